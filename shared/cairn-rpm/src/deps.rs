//! Dependencies (provides, requires, conflicts, obsoletes and the weak kinds),
//! read and filtered the way createrepo_c 0.x does it, so that the lists are
//! exactly the ones `primary.xml` shows (see [`crate::RpmInfo::requires`]).

use crate::error::RpmError;
use crate::header::{Header, Tag, tags};
use crate::inspect::FileEntry;
use crate::repodata::is_primary_file;
use crate::vercmp::rpmvercmp;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

/// `RPMSENSE_*` bits of dependency flags.
mod sense {
    pub const COMPARISON: u64 = 0x0f;
    pub const PREREQ: u64 = 1 << 6;
    pub const SCRIPT_PRE: u64 = 1 << 9;
    pub const SCRIPT_POST: u64 = 1 << 10;
    pub const MISSINGOK: u64 = 1 << 19;
    pub const STRONG: u64 = 1 << 27;
}

/// Most dependencies of all kinds together a package may declare (real
/// packages: hundreds, a few tens of thousands for the largest bundles).
pub const MAX_DEPENDENCIES: usize = 200_000;

/// Version comparison of a dependency (`flags` attribute in primary.xml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DepFlag {
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `=`
    Eq,
    /// `<=`
    Le,
    /// `>=`
    Ge,
}

impl DepFlag {
    /// From `RPMSENSE_LESS` (0x02), `GREATER` (0x04) and `EQUAL` (0x08). Other
    /// combinations (none, or less-and-greater) have no comparison, as in
    /// createrepo_c.
    pub fn from_sense(flags: u64) -> Option<Self> {
        match flags & sense::COMPARISON {
            0x2 => Some(DepFlag::Lt),
            0x4 => Some(DepFlag::Gt),
            0x8 => Some(DepFlag::Eq),
            0xa => Some(DepFlag::Le),
            0xc => Some(DepFlag::Ge),
            _ => None,
        }
    }

    /// The spelling repodata uses: `LT`, `GT`, `EQ`, `LE` or `GE`.
    pub fn as_str(self) -> &'static str {
        match self {
            DepFlag::Lt => "LT",
            DepFlag::Gt => "GT",
            DepFlag::Eq => "EQ",
            DepFlag::Le => "LE",
            DepFlag::Ge => "GE",
        }
    }
}

/// One dependency (provides, requires, ...), split as repodata writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// What is depended on: a package or virtual name, a file path, `soname()(64bit)`...
    pub name: String,
    /// The comparison, if the dependency is versioned.
    pub flags: Option<DepFlag>,
    /// Epoch of the version. `"0"` when a version is given without an epoch,
    /// as createrepo_c writes it; `None` when there is no version.
    pub epoch: Option<String>,
    /// Version, up to the first `-`.
    pub version: Option<String>,
    /// Release, after the first `-`, if any.
    pub release: Option<String>,
    /// Requires only: needed by a `%pre` or `%post` scriptlet (or a legacy
    /// `PreReq`), so must be installed before this package.
    pub pre: bool,
}

/// One raw dependency as the header stores it.
struct RawDep {
    name: String,
    flags: u64,
    version: String,
}

fn raw_deps(h: &Header, name: Tag, flags: Tag, version: Tag) -> Result<Vec<RawDep>, RpmError> {
    let n = h.count(name);
    // Counts are compared before anything is read, so a huge companion array
    // costs nothing.
    if [flags, version]
        .iter()
        .any(|&tag| h.has(tag) && h.count(tag) != n)
    {
        return Err(RpmError::count_mismatch(
            &[name, flags, version],
            &[n, h.count(flags), h.count(version)],
        ));
    }
    let Some(names) = h.strings(name)? else {
        return Ok(Vec::new());
    };
    // rpm reads a missing flags or version array as "unversioned"; createrepo_c
    // drops the whole list instead. Unversioned is the safer reading.
    let flag_values = h.numbers(flags)?.unwrap_or_else(|| vec![0; n]);
    let versions = h
        .strings(version)?
        .unwrap_or_else(|| vec![String::new(); n]);
    Ok(names
        .into_iter()
        .zip(flag_values.into_iter().zip(versions))
        .map(|(name, (flags, version))| RawDep {
            name,
            flags,
            version,
        })
        .collect())
}

/// Splits `[E:]V[-R]` as createrepo_c's `cr_str_to_evr` does: the epoch is what
/// precedes the first `:` (`"0"` if none), the version runs to the first `-`
/// after it. `None` when the epoch is not a number: createrepo_c skips such a
/// dependency with a warning, and so does Cairn.
fn split_evr(full: &str) -> Option<(Option<String>, Option<String>, Option<String>)> {
    if full.is_empty() {
        return Some((None, None, None));
    }
    let (epoch, rest) = match full.split_once(':') {
        Some((epoch, rest)) => {
            if !epoch.is_empty() && !is_strtol_number(epoch) {
                return None;
            }
            let epoch = if epoch.is_empty() { "0" } else { epoch };
            (epoch.to_string(), rest)
        }
        None => ("0".to_string(), full),
    };
    let (version, release) = match rest.split_once('-') {
        Some((v, r)) => (v.to_string(), (!r.is_empty()).then(|| r.to_string())),
        None => (rest.to_string(), None),
    };
    Some((Some(epoch), Some(version), release))
}

/// Whether C's `strtol` would consume all of `s` (leading white space, an
/// optional sign, at least one digit): createrepo_c's test for a numeric epoch.
fn is_strtol_number(s: &str) -> bool {
    let s = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `None` for a dependency createrepo_c skips (non-numeric epoch).
fn make_dep(raw: &RawDep, pre: bool) -> Option<Dependency> {
    let (epoch, version, release) = split_evr(&raw.version)?;
    Some(Dependency {
        name: raw.name.clone(),
        flags: DepFlag::from_sense(raw.flags),
        epoch,
        version,
        release,
        pre,
    })
}

/// The weak dependency tag sets, in the order createrepo_c reads them.
enum Weak {
    Suggests,
    Enhances,
    Recommends,
    Supplements,
    OldSuggests,
    OldEnhances,
}

/// A package's dependency lists, filtered; see the fields of [`crate::RpmInfo`].
#[derive(Default)]
pub(crate) struct Deps {
    pub provides: Vec<Dependency>,
    pub requires: Vec<Dependency>,
    pub conflicts: Vec<Dependency>,
    pub obsoletes: Vec<Dependency>,
    pub recommends: Vec<Dependency>,
    pub suggests: Vec<Dependency>,
    pub supplements: Vec<Dependency>,
    pub enhances: Vec<Dependency>,
}

/// Key createrepo_c uses to match a require against a provide: name, flag
/// spelling and version string run together.
fn nfv_key(raw: &RawDep) -> String {
    let flag = DepFlag::from_sense(raw.flags).map_or("", DepFlag::as_str);
    format!("{}{}{}", raw.name, flag, raw.version)
}

/// The name tags of every dependency kind, for the overall limit.
const DEPENDENCY_NAME_TAGS: [Tag; 10] = [
    tags::PROVIDENAME,
    tags::CONFLICTNAME,
    tags::OBSOLETENAME,
    tags::REQUIRENAME,
    tags::SUGGESTNAME,
    tags::ENHANCENAME,
    tags::RECOMMENDNAME,
    tags::SUPPLEMENTNAME,
    tags::OLDSUGGESTSNAME,
    tags::OLDENHANCESNAME,
];

/// Reads every dependency list of `h`. `files` are the package's own paths: a
/// require of one of its primary files is dropped.
pub(crate) fn read_deps(h: &Header, files: &[FileEntry]) -> Result<Deps, RpmError> {
    let total: usize = DEPENDENCY_NAME_TAGS.iter().map(|&t| h.count(t)).sum();
    if total > MAX_DEPENDENCIES {
        return Err(RpmError::too_many("dependencies", total, MAX_DEPENDENCIES));
    }
    let mut deps = Deps::default();

    let mut provided = HashSet::new();
    for raw in raw_deps(
        h,
        tags::PROVIDENAME,
        tags::PROVIDEFLAGS,
        tags::PROVIDEVERSION,
    )? {
        if let Some(dep) = make_dep(&raw, false) {
            provided.insert(nfv_key(&raw));
            deps.provides.push(dep);
        }
    }
    for raw in raw_deps(
        h,
        tags::CONFLICTNAME,
        tags::CONFLICTFLAGS,
        tags::CONFLICTVERSION,
    )? {
        deps.conflicts.extend(make_dep(&raw, false));
    }
    for raw in raw_deps(
        h,
        tags::OBSOLETENAME,
        tags::OBSOLETEFLAGS,
        tags::OBSOLETEVERSION,
    )? {
        deps.obsoletes.extend(make_dep(&raw, false));
    }

    let own_files: HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    // Last kept require per name: (flag, version string, pre).
    let mut previous: HashMap<String, (Option<DepFlag>, String, bool)> = HashMap::new();
    let mut libc_highest: Option<Dependency> = None;
    for raw in raw_deps(
        h,
        tags::REQUIRENAME,
        tags::REQUIREFLAGS,
        tags::REQUIREVERSION,
    )? {
        // rpm checks rpmlib() features itself; dnf never needs to see them.
        if raw.name.starts_with("rpmlib(") {
            continue;
        }
        // A primary file this package ships satisfies itself, and primary.xml
        // lists it, so the require would only cost solver time.
        if raw.name.starts_with('/')
            && own_files.contains(raw.name.as_str())
            && is_primary_file(&raw.name)
        {
            continue;
        }
        if provided.contains(&nfv_key(&raw)) {
            continue;
        }
        let pre = raw.flags & (sense::PREREQ | sense::SCRIPT_PRE | sense::SCRIPT_POST) != 0;
        let flag = DepFlag::from_sense(raw.flags);
        if previous
            .get(&raw.name)
            .is_some_and(|(f, v, p)| *f == flag && *v == raw.version && *p == pre)
        {
            continue;
        }
        let Some(mut dep) = make_dep(&raw, pre) else {
            continue;
        };
        // Legacy weak dependency (rpm < 4.12 spelling of Recommends).
        if raw.flags & sense::MISSINGOK != 0 {
            dep.pre = false;
            deps.recommends.push(dep);
            continue;
        }
        // createrepo_c keeps a single libc.so.6 require, the highest symbol
        // version, and lists it last.
        if dep.name.starts_with("libc.so.6") {
            match &libc_highest {
                Some(best) if !libc_second_is_higher(&best.name, &dep.name) => {}
                _ => libc_highest = Some(dep),
            }
            continue;
        }
        previous.insert(raw.name.clone(), (flag, raw.version.clone(), pre));
        deps.requires.push(dep);
    }
    deps.requires.extend(libc_highest);

    // Listed in createrepo_c's order, which decides where the legacy ones land
    // in each list.
    let weak = [
        (
            Weak::Suggests,
            tags::SUGGESTNAME,
            tags::SUGGESTFLAGS,
            tags::SUGGESTVERSION,
        ),
        (
            Weak::Enhances,
            tags::ENHANCENAME,
            tags::ENHANCEFLAGS,
            tags::ENHANCEVERSION,
        ),
        (
            Weak::Recommends,
            tags::RECOMMENDNAME,
            tags::RECOMMENDFLAGS,
            tags::RECOMMENDVERSION,
        ),
        (
            Weak::Supplements,
            tags::SUPPLEMENTNAME,
            tags::SUPPLEMENTFLAGS,
            tags::SUPPLEMENTVERSION,
        ),
        (
            Weak::OldSuggests,
            tags::OLDSUGGESTSNAME,
            tags::OLDSUGGESTSFLAGS,
            tags::OLDSUGGESTSVERSION,
        ),
        (
            Weak::OldEnhances,
            tags::OLDENHANCESNAME,
            tags::OLDENHANCESFLAGS,
            tags::OLDENHANCESVERSION,
        ),
    ];
    for (kind, name, flags, version) in weak {
        for raw in raw_deps(h, name, flags, version)? {
            let Some(dep) = make_dep(&raw, false) else {
                continue;
            };
            let strong = raw.flags & sense::STRONG != 0;
            let list = match kind {
                Weak::Suggests => &mut deps.suggests,
                Weak::Enhances => &mut deps.enhances,
                Weak::Recommends => &mut deps.recommends,
                Weak::Supplements => &mut deps.supplements,
                // Before rpm 4.12 a "strong" suggest was a recommend and a
                // "strong" enhance a supplement.
                Weak::OldSuggests if strong => &mut deps.recommends,
                Weak::OldSuggests => &mut deps.suggests,
                Weak::OldEnhances if strong => &mut deps.supplements,
                Weak::OldEnhances => &mut deps.enhances,
            };
            list.push(dep);
        }
    }
    Ok(deps)
}

/// createrepo_c's `cr_compare_dependency` for two `libc.so.6...` names: whether
/// the second has the higher symbol version, e.g. `libc.so.6(GLIBC_2.4)` over
/// `libc.so.6(GLIBC_2.3.4)(64bit)`, and any version over none.
fn libc_second_is_higher(first: &str, second: &str) -> bool {
    let (Some(open1), Some(open2)) = (first.find('('), second.find('(')) else {
        return first.find('(').is_none() && second.find('(').is_some();
    };
    let close1 = first[open1..].find(')').map(|i| open1 + i);
    let close2 = second[open2..].find(')').map(|i| open2 + i);
    let (Some(close1), Some(close2)) = (close1, close2) else {
        return close1.is_none() && close2.is_some();
    };
    let (inner1, inner2) = (&first[open1 + 1..close1], &second[open2 + 1..close2]);
    if inner1.is_empty() || inner2.is_empty() {
        return inner1.is_empty() && !inner2.is_empty();
    }
    // The version starts at the first digit after "(", wherever that is.
    let digit = |s: &str, from: usize| {
        s[from..]
            .find(|c: char| c.is_ascii_digit())
            .map_or(s.len(), |i| from + i)
    };
    let (d1, d2) = (digit(first, open1 + 1), digit(second, open2 + 1));
    match (d1 > close1, d2 > close2) {
        (true, true) => false,
        (true, false) => true,
        (false, true) => false,
        (false, false) => rpmvercmp(&first[d1..close1], &second[d2..close2]) == Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evr_split_follows_createrepo_c() {
        let s = split_evr;
        let some = |x: &str| Some(x.to_string());
        assert_eq!(s(""), Some((None, None, None)));
        assert_eq!(s("1.0"), Some((some("0"), some("1.0"), None)));
        assert_eq!(s("1.0-2"), Some((some("0"), some("1.0"), some("2"))));
        assert_eq!(
            s("3:1.0-2.el9"),
            Some((some("3"), some("1.0"), some("2.el9")))
        );
        assert_eq!(s("1.0-2-3"), Some((some("0"), some("1.0"), some("2-3"))));
        assert_eq!(s(":1.0"), Some((some("0"), some("1.0"), None)));
        assert_eq!(s("1.0-"), Some((some("0"), some("1.0"), None)));
        assert_eq!(s("x:1.0"), None, "non-numeric epoch");
        assert_eq!(s("1a:1.0"), None, "non-numeric epoch");
    }

    #[test]
    fn flags_only_for_plain_comparisons() {
        assert_eq!(
            DepFlag::from_sense(0x0c | sense::SCRIPT_PRE),
            Some(DepFlag::Ge)
        );
        assert_eq!(DepFlag::from_sense(0x06), None);
        assert_eq!(DepFlag::from_sense(0), None);
    }

    #[test]
    fn libc_ordering() {
        assert!(libc_second_is_higher(
            "libc.so.6",
            "libc.so.6(GLIBC_2.2.5)(64bit)"
        ));
        assert!(libc_second_is_higher(
            "libc.so.6(GLIBC_2.3.4)(64bit)",
            "libc.so.6(GLIBC_2.14)(64bit)"
        ));
        assert!(!libc_second_is_higher(
            "libc.so.6(GLIBC_2.14)(64bit)",
            "libc.so.6(GLIBC_2.3.4)(64bit)"
        ));
        assert!(!libc_second_is_higher(
            "libc.so.6()(64bit)",
            "libc.so.6()(64bit)"
        ));
        assert!(libc_second_is_higher(
            "libc.so.6()(64bit)",
            "libc.so.6(GLIBC_2.2.5)(64bit)"
        ));
    }
}
