//! What a credential may do: scopes, the roles of password accounts, and the check
//! each route makes before it acts.
//!
//! A scope is an action and, for actions on named resources, a pattern of names:
//! `upload:release/2.11/*` uploads into every repository under `release/2.11/`,
//! `archive:tarantool*` archives under names starting with `tarantool`, `webhooks`
//! manages the account's webhooks, `admin` allows everything. A pattern is `*`, an
//! exact name, or a prefix followed by one `*`, so whether one scope covers another
//! (a token may only be issued with scopes its issuer holds) is a plain prefix test.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest scope text accepted.
pub const MAX_SCOPE: usize = 300;
/// Most scopes one credential holds.
pub const MAX_SCOPES: usize = 50;

/// What a scope allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Read private repositories (their files and listings).
    Read,
    /// Upload packages, presigned uploads and their tickets, republish.
    Upload,
    /// Delete packages.
    Delete,
    /// Create repositories under a path; update and delete those the account owns.
    Repositories,
    /// Archive sources under a name: create, clone, cancel, read the archive.
    Archive,
    /// Manage the account's webhooks and their deliveries.
    Webhooks,
    /// Read the account's own events (its operations' and webhooks').
    Events,
    /// Issue, list and revoke the account's tokens.
    Tokens,
    /// Define projects under a name, start, cancel and read their builds.
    Builds,
    /// Read and write a project's artifacts (the artifact store's names and blobs).
    Artifacts,
    /// Take build work as a worker (claim actions, report their results).
    Worker,
    /// Everything.
    Admin,
}

impl Action {
    /// Every action, in the order the documentation lists them.
    pub const ALL: [Action; 12] = [
        Action::Read,
        Action::Upload,
        Action::Delete,
        Action::Repositories,
        Action::Archive,
        Action::Webhooks,
        Action::Events,
        Action::Tokens,
        Action::Builds,
        Action::Artifacts,
        Action::Worker,
        Action::Admin,
    ];

    /// The action's name in a scope.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Upload => "upload",
            Action::Delete => "delete",
            Action::Repositories => "repositories",
            Action::Archive => "archive",
            Action::Webhooks => "webhooks",
            Action::Events => "events",
            Action::Tokens => "tokens",
            Action::Builds => "builds",
            Action::Artifacts => "artifacts",
            Action::Worker => "worker",
            Action::Admin => "admin",
        }
    }

    /// Whether the action is on named resources (repositories, archive names), so
    /// its scopes carry a pattern.
    pub fn takes_pattern(self) -> bool {
        matches!(
            self,
            Action::Read
                | Action::Upload
                | Action::Delete
                | Action::Repositories
                | Action::Archive
                | Action::Builds
                | Action::Artifacts
        )
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Names a scope applies to: `*`, an exact name, or a prefix and one final `*`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pattern(String);

impl Pattern {
    /// Every name.
    pub fn any() -> Self {
        Pattern("*".into())
    }

    /// Reads a pattern; `*` may only end it.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() || text.len() > MAX_SCOPE {
            return Err("a scope's pattern is empty or too long".into());
        }
        if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!(
                "scope pattern {text:?} has spaces or control characters"
            ));
        }
        if text.trim_end_matches('*').contains('*') || text.ends_with("**") {
            return Err(format!(
                "scope pattern {text:?}: `*` may only end a pattern (release/2.11/*)"
            ));
        }
        Ok(Pattern(text.to_string()))
    }

    /// Whether `name` is one of the pattern's names.
    pub fn matches(&self, name: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => self.0 == name,
        }
    }

    /// Whether every name `other` matches, this pattern matches too.
    pub fn covers(&self, other: &Pattern) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => other.0.starts_with(prefix),
            None => self.0 == other.0,
        }
    }

    /// The pattern's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One permission: an action, on the names a pattern matches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    /// What it allows.
    pub action: Action,
    /// On which names (`*` for actions without names).
    pub pattern: Pattern,
}

impl Scope {
    /// `action` on every name.
    pub fn all(action: Action) -> Self {
        Scope {
            action,
            pattern: Pattern::any(),
        }
    }

    /// Reads `action` or `action:pattern` (the pattern defaults to `*`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (name, pattern) = match text.split_once(':') {
            Some((name, pattern)) => (name, Some(pattern)),
            None => (text, None),
        };
        let action = Action::parse(name).ok_or_else(|| {
            format!(
                "unknown scope {text:?}: the actions are {}",
                Action::ALL.map(Action::as_str).join(", ")
            )
        })?;
        let pattern = match pattern {
            Some(_) if !action.takes_pattern() => {
                return Err(format!(
                    "scope {text:?}: {action} takes no pattern (it is the account's own {action})",
                    action = action.as_str(),
                ));
            }
            Some(p) => Pattern::parse(p).map_err(|e| format!("scope {text:?}: {e}"))?,
            None => Pattern::any(),
        };
        Ok(Scope { action, pattern })
    }

    /// Whether this scope allows everything `other` allows.
    pub fn covers(&self, other: &Scope) -> bool {
        self.action == Action::Admin
            || (self.action == other.action && self.pattern.covers(&other.pattern))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.action.takes_pattern() {
            write!(f, "{}:{}", self.action, self.pattern.as_str())
        } else {
            f.write_str(self.action.as_str())
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Scope::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// What one credential may do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// Reads a list of scopes; at least one, at most [`MAX_SCOPES`], no repeats.
    pub fn parse(texts: &[String]) -> Result<Self, String> {
        if texts.is_empty() {
            return Err("a token needs at least one scope".into());
        }
        if texts.len() > MAX_SCOPES {
            return Err(format!("at most {MAX_SCOPES} scopes"));
        }
        let mut scopes: Vec<Scope> = texts
            .iter()
            .map(|t| Scope::parse(t))
            .collect::<Result<_, _>>()?;
        scopes.sort();
        scopes.dedup();
        Ok(Scopes(scopes))
    }

    /// The scopes.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// Whether these scopes allow `action` on `name` (`""` for actions without names).
    pub fn allows(&self, action: Action, name: &str) -> bool {
        self.0
            .iter()
            .any(|s| s.action == Action::Admin || (s.action == action && s.pattern.matches(name)))
    }

    /// Whether these scopes allow `action` on some name (a listing of one's own
    /// things, say).
    pub fn allows_any(&self, action: Action) -> bool {
        self.0
            .iter()
            .any(|s| s.action == Action::Admin || s.action == action)
    }

    /// These scopes, less those `bound` does not cover (a token never does more than
    /// its account's role allows now).
    pub fn within(&self, bound: &Scopes) -> Scopes {
        Scopes(
            self.0
                .iter()
                .filter(|s| bound.0.iter().any(|b| b.covers(s)))
                .cloned()
                .collect(),
        )
    }

    /// These scopes without those of `action`.
    pub fn without(&self, action: Action) -> Scopes {
        Scopes(
            self.0
                .iter()
                .filter(|s| s.action != action)
                .cloned()
                .collect(),
        )
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The requested scopes that these do not cover (a token is issued only with
    /// scopes its issuer holds).
    pub fn not_covered<'a>(&self, requested: &'a Scopes) -> Vec<&'a Scope> {
        requested
            .0
            .iter()
            .filter(|r| !self.0.iter().any(|held| held.covers(r)))
            .collect()
    }

    /// Whether these scopes cover every requested one; if not, the ones they do not,
    /// comma-separated.
    pub fn holds_all(&self, requested: &Scopes) -> Result<(), String> {
        let missing: Vec<String> = self
            .not_covered(requested)
            .iter()
            .map(ToString::to_string)
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join(", "))
        }
    }
}

/// The role of a password account: what its Basic credentials may do. Accounts
/// made before roles existed are uploaders, which is what they could do then.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Upload, delete, create repositories, archive, read; the account's webhooks,
    /// events and tokens.
    #[default]
    Uploader,
    /// Read private repositories; the account's events and tokens.
    Reader,
}

impl Role {
    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Uploader => "uploader",
            Role::Reader => "reader",
        }
    }

    /// Reads a role name.
    pub fn parse(text: &str) -> Result<Self, String> {
        [Role::Admin, Role::Uploader, Role::Reader]
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| format!("unknown role {text:?}: admin, uploader or reader"))
    }

    /// What the role's password may do.
    pub fn scopes(self) -> Scopes {
        let actions: &[Action] = match self {
            Role::Admin => &[Action::Admin],
            Role::Uploader => &[
                Action::Read,
                Action::Upload,
                Action::Delete,
                Action::Repositories,
                Action::Archive,
                Action::Webhooks,
                Action::Events,
                Action::Tokens,
                Action::Builds,
                Action::Artifacts,
            ],
            Role::Reader => &[Action::Read, Action::Events, Action::Tokens],
        };
        Scopes(actions.iter().map(|a| Scope::all(*a)).collect())
    }
}

/// A request its credential does not allow: answered 403 with the scope it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// What was asked.
    pub action: Action,
    /// On what (empty for actions without names).
    pub name: String,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.action {
            Action::Read => "read",
            Action::Upload => "upload to",
            Action::Delete => "delete from",
            Action::Repositories => "manage the repository",
            Action::Archive => "archive under",
            Action::Webhooks => "manage webhooks",
            Action::Events => "read the account's events",
            Action::Tokens => "manage tokens",
            Action::Builds => "build the project",
            Action::Artifacts => "use the artifacts of project",
            Action::Worker => "take build work",
            Action::Admin => "administer Cairn",
        };
        let needed = if self.action.takes_pattern() {
            format!("{}:{}", self.action, self.name)
        } else {
            self.action.to_string()
        };
        let on = if self.action.takes_pattern() {
            format!(" {}", self.name)
        } else {
            String::new()
        };
        write!(
            f,
            "this credential may not {verb}{on}: it needs the scope {needed}"
        )
    }
}

impl std::error::Error for Denied {}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(texts: &[&str]) -> Scopes {
        Scopes::parse(&texts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("valid")
    }

    #[test]
    fn scopes_read_an_action_and_a_pattern() {
        let s = Scope::parse("upload:release/2.11/*").expect("valid");
        assert_eq!(
            (s.action, s.pattern.as_str()),
            (Action::Upload, "release/2.11/*")
        );
        assert_eq!(s.to_string(), "upload:release/2.11/*");
        assert_eq!(
            Scope::parse("upload").expect("valid").to_string(),
            "upload:*"
        );
        assert_eq!(
            Scope::parse("webhooks").expect("valid").to_string(),
            "webhooks"
        );
        for bad in [
            "",
            "fly",
            "upload:",
            "upload:a*b",
            "upload:**",
            "upload:a b",
            "webhooks:x",
            "admin:*",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Scopes::parse(&[]).is_err());
        assert_eq!(scopes(&["upload:a", "upload:a"]).iter().count(), 1);
    }

    #[test]
    fn patterns_match_names_and_cover_narrower_patterns() {
        let p = Pattern::parse("release/2.11/*").expect("valid");
        assert!(p.matches("release/2.11/ubuntu/jammy"));
        assert!(!p.matches("release/2.1/ubuntu/jammy"));
        assert!(!p.matches("release/3.0/ubuntu/jammy"));
        assert!(p.covers(&Pattern::parse("release/2.11/ubuntu*").expect("valid")));
        assert!(p.covers(&Pattern::parse("release/2.11/el/9").expect("valid")));
        assert!(!p.covers(&Pattern::parse("release/*").expect("valid")));
        assert!(!p.covers(&Pattern::any()));
        let exact = Pattern::parse("demo").expect("valid");
        assert!(exact.matches("demo") && !exact.matches("demo2"));
        assert!(!exact.covers(&Pattern::parse("demo*").expect("valid")));
    }

    #[test]
    fn a_credential_allows_what_one_of_its_scopes_allows() {
        let held = scopes(&["upload:release/2.11/*", "webhooks"]);
        assert!(held.allows(Action::Upload, "release/2.11/ubuntu/jammy"));
        assert!(!held.allows(Action::Upload, "release/3.0/ubuntu/jammy"));
        assert!(!held.allows(Action::Delete, "release/2.11/ubuntu/jammy"));
        assert!(held.allows(Action::Webhooks, ""));
        assert!(!held.allows(Action::Tokens, ""));
        assert!(Role::Admin.scopes().allows(Action::Delete, "anything"));
        assert!(Role::Uploader.scopes().allows(Action::Upload, "x"));
        assert!(!Role::Reader.scopes().allows(Action::Upload, "x"));

        let wanted = scopes(&[
            "upload:release/2.11/ubuntu*",
            "delete:release/*",
            "webhooks",
        ]);
        let missing: Vec<String> = held
            .not_covered(&wanted)
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(missing, ["delete:release/*"]);
        assert!(Role::Admin.scopes().not_covered(&wanted).is_empty());
    }

    #[test]
    fn a_refusal_names_the_scope_it_needs() {
        let denied = Denied {
            action: Action::Upload,
            name: "release/3.0/el/9".into(),
        };
        assert_eq!(
            denied.to_string(),
            "this credential may not upload to release/3.0/el/9: it needs the scope upload:release/3.0/el/9"
        );
        let denied = Denied {
            action: Action::Webhooks,
            name: String::new(),
        };
        assert_eq!(
            denied.to_string(),
            "this credential may not manage webhooks: it needs the scope webhooks"
        );
    }
}
