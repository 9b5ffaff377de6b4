use super::*;
use cairn_deb::SourceReader;
use std::io::Write;

const CHART_YAML: &str = "apiVersion: v2\nname: demo\ndescription: A demo chart\n\
type: application\nversion: 0.1.0\nappVersion: \"1.16.0\"\nengine: gotpl\n";

#[derive(Clone, Copy)]
enum Kind<'a> {
    File(&'a [u8]),
    Dir,
    Symlink(&'a str),
    HardLink(&'a str),
    Fifo,
}

/// A tar archive whose entry names are written raw: the tar crate's builder refuses
/// `..` and absolute paths, which these tests need to produce.
fn tar_of(entries: &[(&str, Kind<'_>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, kind) in entries {
        let mut header = tar::Header::new_gnu();
        let name = &mut header.as_gnu_mut().expect("gnu header").name;
        assert!(path.len() <= name.len(), "test path too long");
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_mode(0o644);
        let data: &[u8] = match kind {
            Kind::File(data) => {
                header.set_entry_type(tar::EntryType::Regular);
                data
            }
            Kind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                b""
            }
            Kind::Symlink(target) | Kind::HardLink(target) => {
                header.set_entry_type(if matches!(kind, Kind::Symlink(_)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                header.set_link_name(target).expect("link name");
                b""
            }
            Kind::Fifo => {
                header.set_entry_type(tar::EntryType::Fifo);
                b""
            }
        };
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).expect("in-memory tar");
    }
    builder.into_inner().expect("in-memory tar")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    // Stored blocks: compressing megabytes in an unoptimised test build is slow.
    let level = if data.len() > 1 << 20 {
        flate2::Compression::none()
    } else {
        flate2::Compression::fast()
    };
    let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
    e.write_all(data).expect("in memory");
    e.finish().expect("in memory")
}

fn chart_with(extra: &[(&str, Kind<'_>)]) -> Vec<u8> {
    let mut entries = vec![
        ("demo/", Kind::Dir),
        ("demo/Chart.yaml", Kind::File(CHART_YAML.as_bytes())),
        ("demo/values.yaml", Kind::File(b"replicaCount: 1\n")),
        (
            "demo/templates/deployment.yaml",
            Kind::File(b"kind: Deployment\n"),
        ),
    ];
    entries.extend(extra.iter().copied());
    gzip(&tar_of(&entries))
}

fn inspect(bytes: &[u8]) -> Result<ChartInfo, ChartError> {
    inspect_chart("demo-0.1.0.tgz", bytes)
}

fn refusal(bytes: &[u8]) -> String {
    match inspect(bytes) {
        Ok(info) => panic!("accepted {}", info.name),
        Err(e) => e.to_string(),
    }
}

#[test]
fn valid_chart() {
    let bytes = chart_with(&[]);
    let info = inspect(&bytes).expect("valid chart");
    assert_eq!(info.name, "demo");
    assert_eq!(info.version, "0.1.0");
    assert_eq!(info.app_version.as_deref(), Some("1.16.0"));
    assert_eq!(info.description.as_deref(), Some("A demo chart"));
    assert_eq!(info.chart_yaml_text, CHART_YAML);
    assert_eq!(
        info.chart_yaml["engine"], "gotpl",
        "unknown fields are kept"
    );
    assert_eq!(info.digests, Digests::of(&bytes), "digests cover the file");
}

#[test]
fn no_chart_yaml() {
    let bytes = gzip(&tar_of(&[
        ("demo/values.yaml", Kind::File(b"a: 1\n")),
        ("demo/sub/Chart.yaml", Kind::File(CHART_YAML.as_bytes())),
    ]));
    assert_eq!(refusal(&bytes), "no Chart.yaml in chart archive");
}

#[test]
fn file_name_must_match_name_and_version() {
    let bytes = chart_with(&[]);
    let err = inspect_chart("other-0.1.0.tgz", &bytes[..]).expect_err("name mismatch");
    assert_eq!(
        err.to_string(),
        "file name other-0.1.0.tgz does not match chart demo version 0.1.0 (expected demo-0.1.0.tgz)"
    );
    let err = inspect_chart("demo-0.1.tgz", &bytes[..]).expect_err("version mismatch");
    assert_eq!(
        err.to_string(),
        "file name demo-0.1.tgz does not match chart demo version 0.1.0 (expected demo-0.1.0.tgz)"
    );
}

#[test]
fn chart_name_must_match_its_directory() {
    let bytes = gzip(&tar_of(&[(
        "other/Chart.yaml",
        Kind::File(CHART_YAML.as_bytes()),
    )]));
    let err = inspect(&bytes).expect_err("mismatch");
    assert!(
        err.to_string()
            .contains("chart name \"demo\" does not match the archive's directory \"other\""),
        "{err}"
    );
}

#[test]
fn version_must_be_semver() {
    let yaml = CHART_YAML.replace("version: 0.1.0", "version: \"1.0\"");
    let bytes = gzip(&tar_of(&[("demo/Chart.yaml", Kind::File(yaml.as_bytes()))]));
    let err = inspect_chart("demo-1.0.tgz", &bytes[..]).expect_err("not semver");
    assert!(matches!(err, ChartError::ChartYaml(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("invalid Chart.yaml: version \"1.0\" is not SemVer 2"),
        "{err}"
    );
}

#[test]
fn invalid_chart_yaml_is_refused() {
    for (yaml, want) in [
        ("name: [unclosed\n", "invalid Chart.yaml: "),
        ("", "Chart.yaml is empty"),
        ("- a\n- b\n", "must be a mapping"),
        (
            "apiVersion: v2\nname: demo\nname: demo\nversion: 0.1.0\n",
            "duplicate key",
        ),
    ] {
        let bytes = gzip(&tar_of(&[("demo/Chart.yaml", Kind::File(yaml.as_bytes()))]));
        let err = refusal(&bytes);
        assert!(err.contains(want), "{yaml:?}: {err}");
    }
    let bytes = gzip(&tar_of(&[("demo/Chart.yaml", Kind::File(b"name: \xff\n"))]));
    assert!(refusal(&bytes).contains("not UTF-8"));
}

#[test]
fn traversal_is_refused() {
    let bytes = chart_with(&[("../../etc/passwd", Kind::File(b"root:x:0:0\n"))]);
    assert_eq!(
        refusal(&bytes),
        "chart archive entry \"../../etc/passwd\" escapes the chart directory"
    );
    let bytes = chart_with(&[("demo/templates/../../../x", Kind::File(b"x"))]);
    assert!(refusal(&bytes).ends_with("escapes the chart directory"));
}

#[test]
fn absolute_paths_are_refused() {
    let bytes = chart_with(&[("/etc/cron.d/evil", Kind::File(b"x"))]);
    assert_eq!(
        refusal(&bytes),
        "chart archive entry \"/etc/cron.d/evil\" is an absolute path"
    );
    let bytes = chart_with(&[("C:/windows/evil", Kind::File(b"x"))]);
    assert!(refusal(&bytes).ends_with("is an absolute path"));
}

#[test]
fn entries_outside_the_top_directory_are_refused() {
    let bytes = chart_with(&[("other/values.yaml", Kind::File(b"x"))]);
    assert_eq!(
        refusal(&bytes),
        "chart archive entry \"other/values.yaml\" is outside the chart directory \"demo\""
    );
    let bytes = gzip(&tar_of(&[(
        "Chart.yaml",
        Kind::File(CHART_YAML.as_bytes()),
    )]));
    assert_eq!(
        refusal(&bytes),
        "chart archive entry \"Chart.yaml\" is outside the chart directory"
    );
    for (path, want) in [
        ("demo/a\\b", "contains a backslash"),
        ("./demo/x", "has a \".\" path component"),
    ] {
        let bytes = chart_with(&[(path, Kind::File(b"x"))]);
        assert!(refusal(&bytes).ends_with(want), "{path}");
    }
}

#[test]
fn links_and_devices_are_refused() {
    let bytes = chart_with(&[("demo/templates/link.yaml", Kind::Symlink("/etc/passwd"))]);
    assert_eq!(
        refusal(&bytes),
        "chart archive entry \"demo/templates/link.yaml\" is a symbolic link; \
         charts may contain only regular files and directories"
    );
    let bytes = chart_with(&[("demo/hard", Kind::HardLink("demo/values.yaml"))]);
    assert!(refusal(&bytes).contains("is a hard link"));
    let bytes = chart_with(&[("demo/fifo", Kind::Fifo)]);
    assert!(refusal(&bytes).contains("is a FIFO"));
}

#[test]
fn duplicate_files_are_refused() {
    let bytes = chart_with(&[("demo/Chart.yaml", Kind::File(b"name: evil\n"))]);
    assert_eq!(
        refusal(&bytes),
        "chart archive entry \"demo/Chart.yaml\" appears twice in the archive"
    );
}

#[test]
fn not_gzip() {
    assert_eq!(
        refusal(b"apiVersion: v2\nname: demo\n"),
        "not a Helm chart: not a gzip file"
    );
    assert_eq!(refusal(b""), "not a Helm chart: the file is empty");
    assert_eq!(refusal(b"\x1f"), "not a Helm chart: not a gzip file");
}

#[test]
fn gzip_that_is_not_tar() {
    let err = refusal(&gzip(b"just some text, long enough to fill a header? no."));
    assert!(
        err.starts_with("not a Helm chart: the gzip data is not a tar archive"),
        "{err}"
    );
    assert!(refusal(&gzip(b"")).contains("the archive is empty"));
}

#[test]
fn truncated_gzip() {
    let bytes = chart_with(&[]);
    let err = inspect(&bytes[..bytes.len() - 10]).expect_err("truncated");
    assert!(matches!(err, ChartError::Truncated), "{err:?}");
    assert_eq!(
        err.to_string(),
        "truncated chart archive: the file ends before the archive does"
    );
    for cut in 0..bytes.len() {
        let err = inspect(&bytes[..cut]).expect_err("truncated input accepted");
        assert!(
            matches!(
                err,
                ChartError::Truncated
                    | ChartError::NotGzip(_)
                    | ChartError::NotTar(_)
                    | ChartError::Corrupt(_)
            ),
            "cut at {cut}: unexpected {err:?}"
        );
    }
}

#[test]
fn damaged_or_trailing_data_is_refused() {
    let mut bytes = chart_with(&[]);
    let crc = bytes.len() - 8;
    bytes[crc] ^= 0xff;
    assert!(refusal(&bytes).starts_with("corrupt chart archive"));

    let mut bytes = chart_with(&[]);
    bytes.extend_from_slice(b"trailing junk");
    assert!(refusal(&bytes).starts_with("corrupt chart archive"));
}

#[test]
fn concatenated_gzip_members_are_read_like_go() {
    let tar = tar_of(&[
        ("demo/Chart.yaml", Kind::File(CHART_YAML.as_bytes())),
        ("demo/values.yaml", Kind::File(b"a: 1\n")),
    ]);
    let mut bytes = gzip(&tar[..700]);
    bytes.extend(gzip(&tar[700..]));
    let info = inspect(&bytes).expect("Go's gzip reader reads every member");
    assert_eq!(info.digests.size, bytes.len() as u64);
}

#[test]
fn oversize_file() {
    let big = vec![0u8; (MAX_FILE_BYTES + 1) as usize];
    let bytes = chart_with(&[("demo/files/big.bin", Kind::File(&big))]);
    assert_eq!(
        refusal(&bytes),
        "chart archive too large: \"demo/files/big.bin\" is 5242881 bytes; \
         Helm refuses files over 5242880 bytes"
    );
    let just_fits = vec![0u8; MAX_FILE_BYTES as usize];
    let bytes = chart_with(&[("demo/files/ok.bin", Kind::File(&just_fits))]);
    inspect(&bytes).expect("a 5 MiB file is within Helm's limit");
}

#[test]
fn total_size_entry_count_and_stream_limits() {
    let small = Limits {
        chart_bytes: 1000,
        file_bytes: 600,
        entries: 6,
        stream_bytes: 8192,
    };
    let file = [b'x'; 500];
    let bytes = chart_with(&[("demo/a", Kind::File(&file)), ("demo/b", Kind::File(&file))]);
    let err = inspect_with_limits("demo-0.1.0.tgz", &bytes[..], small).expect_err("total");
    assert!(
        err.to_string().contains("files add up to more than 1000"),
        "{err}"
    );

    let names: Vec<String> = (0..5).map(|i| format!("demo/f{i}")).collect();
    let many: Vec<(&str, Kind<'_>)> = names
        .iter()
        .map(|p| (p.as_str(), Kind::File(b"x")))
        .collect();
    let bytes = chart_with(&many);
    let err = inspect_with_limits("demo-0.1.0.tgz", &bytes[..], small).expect_err("entries");
    assert!(err.to_string().contains("more than 6 entries"), "{err}");

    // A long-name record is buffered by the tar reader before any limit on file sizes
    // applies; the stream cap stops it.
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(0);
    header.set_entry_type(tar::EntryType::Regular);
    let long_name = format!("demo/{}", "n".repeat(20_000));
    builder
        .append_data(&mut header, &long_name, &b""[..])
        .expect("in-memory tar");
    let bytes = gzip(&builder.into_inner().expect("in-memory tar"));
    let err = inspect_with_limits("demo-0.1.0.tgz", &bytes[..], small).expect_err("stream");
    assert!(
        err.to_string().contains("decompressed data exceeds 8192"),
        "{err}"
    );
}

#[test]
fn v1_charts_with_requirements_yaml() {
    let yaml = "apiVersion: v1\nname: old\nversion: 1.2.3\n";
    let bytes = gzip(&tar_of(&[
        ("old/Chart.yaml", Kind::File(yaml.as_bytes())),
        (
            "old/requirements.yaml",
            Kind::File(b"dependencies:\n- name: x\n"),
        ),
    ]));
    let info = inspect_chart("old-1.2.3.tgz", &bytes[..]).expect("v1 chart");
    assert_eq!(info.chart_yaml.get("dependencies"), None);
}

#[test]
fn byte_order_mark_is_dropped() {
    let yaml = format!("\u{feff}{CHART_YAML}");
    let bytes = gzip(&tar_of(&[("demo/Chart.yaml", Kind::File(yaml.as_bytes()))]));
    assert_eq!(inspect(&bytes).expect("valid").chart_yaml_text, CHART_YAML);
}

#[test]
fn source_failures_are_not_blamed_on_the_chart() {
    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("connection reset"))
        }
    }
    let bytes = chart_with(&[]);
    for cut in [0, 2, 20, bytes.len() / 2, bytes.len() - 4] {
        let reader = SourceReader(Read::chain(&bytes[..cut], Failing));
        let err = inspect_chart("demo-0.1.0.tgz", reader).expect_err("source failed");
        assert!(matches!(err, ChartError::Io(_)), "cut {cut}: {err:?}");
        assert!(err.is_retryable());
    }
}
