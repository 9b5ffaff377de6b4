//! What Cairn publishes for Helm, checked with the real `helm` v3 client: charts made
//! by `helm create` + `helm package` are inspected, an `index.yaml` is rendered and
//! served over HTTP under a path prefix, and `helm repo add`, `helm search repo` and
//! `helm pull` (with and without `--verify`) must accept it. The rendered entries are
//! compared with what `helm repo index` writes for the same files, and the provenance
//! text with what `helm package --sign` signs.
//!
//! Needs `helm` (run `tests/clients/install-helm.sh`, or set `CAIRN_HELM`) and `gpg`.
//! Missing tools fail the test: a skipped client test proves nothing.

use anyhow::{Context, Result, bail, ensure};
use cairn_deb::Digests;
use cairn_helm::{check_provenance, index_entry, inspect_chart, provenance_body, render_index};
use saphyr::{LoadableYamlNode, ScalarOwned, YamlOwned};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use time::OffsetDateTime;

const PREFIX: &str = "/sub/prefix";

fn helm_binary() -> PathBuf {
    let path = std::env::var_os("CAIRN_HELM").map_or_else(
        || {
            let home = std::env::var_os("HOME").unwrap_or_default();
            Path::new(&home).join(".cache/cairn/tools/bin/helm")
        },
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "helm not found at {}: run tests/clients/install-helm.sh (or set CAIRN_HELM to a helm v3 binary)",
        path.display()
    );
    path
}

/// A helm with every config, cache and data folder inside `root`.
struct Helm {
    bin: PathBuf,
    root: PathBuf,
}

impl Helm {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        let r = &self.root;
        cmd.args(args)
            .env("HELM_CONFIG_HOME", r.join("config"))
            .env("HELM_CACHE_HOME", r.join("cache"))
            .env("HELM_DATA_HOME", r.join("data"))
            .env("HELM_REPOSITORY_CONFIG", r.join("config/repositories.yaml"))
            .env("HELM_REPOSITORY_CACHE", r.join("cache/repository"))
            .env("HELM_REGISTRY_CONFIG", r.join("config/registry.json"))
            .env("HELM_PLUGINS", r.join("plugins"))
            .env("KUBECONFIG", "/dev/null")
            .env_remove("HELM_DEBUG");
        cmd
    }

    fn run(&self, args: &[&str], dir: &Path) -> Result<Output> {
        self.command(args)
            .current_dir(dir)
            .output()
            .with_context(|| format!("running helm {args:?}"))
    }

    fn ok(&self, args: &[&str], dir: &Path) -> Result<String> {
        let out = self.run(args, dir)?;
        ensure!(
            out.status.success(),
            "helm {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// A throwaway GnuPG home; its agent is stopped when dropped.
struct Gpg {
    home: PathBuf,
}

impl Gpg {
    fn new(home: PathBuf, uid: &str, algo: &str) -> Result<Self> {
        std::fs::create_dir_all(&home)?;
        // gpg refuses a home that others can read.
        let mut perms = std::fs::metadata(&home)?.permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o700);
        std::fs::set_permissions(&home, perms)?;
        let gpg = Gpg { home };
        gpg.ok(&[
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            algo,
            "sign",
            "never",
        ])?;
        Ok(gpg)
    }

    fn ok(&self, args: &[&str]) -> Result<Vec<u8>> {
        let out = Command::new("gpg")
            .args(args)
            .env("GNUPGHOME", &self.home)
            .output()
            .context("running gpg (install the gnupg package)")?;
        ensure!(
            out.status.success(),
            "gpg {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(out.stdout)
    }

    fn clearsign(&self, text: &str) -> Result<Vec<u8>> {
        let mut child = Command::new("gpg")
            .args(["--batch", "--clearsign", "--digest-algo", "SHA512"])
            .env("GNUPGHOME", &self.home)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("running gpg")?;
        child
            .stdin
            .take()
            .context("gpg stdin")?
            .write_all(text.as_bytes())?;
        let out = child.wait_with_output()?;
        ensure!(
            out.status.success(),
            "gpg --clearsign: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(out.stdout)
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .args(["--kill", "gpg-agent"])
            .env("GNUPGHOME", &self.home)
            .output();
    }
}

/// A static file server for `dir`, reachable only under [`PREFIX`], logging request paths.
fn serve(dir: PathBuf) -> Result<(u16, Arc<Mutex<Vec<String>>>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let server_log = Arc::clone(&log);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let dir = dir.clone();
            let log = Arc::clone(&server_log);
            std::thread::spawn(move || {
                let _ = respond(stream, &dir, &log);
            });
        }
    });
    Ok((port, log))
}

fn respond(mut stream: TcpStream, dir: &Path, log: &Mutex<Vec<String>>) -> Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
    }
    let mut parts = request.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    log.lock()
        .map_err(|_| anyhow::anyhow!("log"))?
        .push(path.to_owned());
    let file = path
        .strip_prefix(PREFIX)
        .and_then(|p| p.strip_prefix('/'))
        .filter(|p| !p.is_empty() && !p.split('/').any(|c| c == ".." || c.is_empty()))
        .map(|p| dir.join(p));
    let body = file.and_then(|f| std::fs::read(f).ok());
    match body {
        Some(body) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            if method != "HEAD" {
                stream.write_all(&body)?;
            }
        }
        None => write!(
            stream,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?,
    }
    Ok(())
}

fn yaml_to_json(y: &YamlOwned) -> Result<Value> {
    Ok(match y {
        YamlOwned::Value(ScalarOwned::Null) => Value::Null,
        YamlOwned::Value(ScalarOwned::Boolean(b)) => Value::Bool(*b),
        YamlOwned::Value(ScalarOwned::Integer(i)) => Value::from(*i),
        YamlOwned::Value(ScalarOwned::FloatingPoint(f)) => serde_json::json!(f.into_inner()),
        YamlOwned::Value(ScalarOwned::String(s)) => Value::String(s.clone()),
        YamlOwned::Sequence(items) => {
            Value::Array(items.iter().map(yaml_to_json).collect::<Result<_>>()?)
        }
        YamlOwned::Mapping(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let YamlOwned::Value(ScalarOwned::String(k)) = k else {
                    bail!("non-string key {k:?}");
                };
                out.insert(k.clone(), yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        other => bail!("unexpected YAML node {other:?}"),
    })
}

/// Parses YAML written by helm with an independent reader (saphyr, YAML 1.2).
fn parse_yaml(text: &str) -> Result<Value> {
    let docs = YamlOwned::load_from_str(text).context("parsing YAML")?;
    yaml_to_json(docs.first().context("empty YAML")?)
}

/// The signed text of a `.prov`, as Helm reads it.
fn signed_text(prov: &str) -> Result<String> {
    let start = prov.find("\n\n").context("no armour header end")? + 2;
    let end = prov
        .find("-----BEGIN PGP SIGNATURE-----")
        .context("no signature")?;
    Ok(prov[start..end]
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("- ").unwrap_or(l)))
        .collect())
}

fn set_version(chart_dir: &Path, version: &str) -> Result<()> {
    let path = chart_dir.join("Chart.yaml");
    let text = std::fs::read_to_string(&path)?;
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("version:") {
                format!("version: {version}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(path, text)?;
    Ok(())
}

/// A Chart.yaml that exercises Helm's coercions, sanitising, quoting and folding.
const RICH_CHART_YAML: &str = r#"apiVersion: v2
name: rich
version: 1.2.3-rc.1+build.5
appVersion: 1.10
description: |
  A long description that goes on and on and on, well past the eighty column mark, surely.
  Second line	with a tab, and 'quotes' and "double quotes" and a # hash.
home: https://example.com/rich
icon: https://example.com/rich.png
kubeVersion: ">=1.22.0-0"
type: application
deprecated: true
keywords: [yes, on, "010", 010, 1e6, 2024-01-02, ~, "", rich, "with: colon"]
sources:
  - https://github.com/example/rich
maintainers:
  - name: Jane Doe
    email: jane@example.com
    url: https://example.com/jane
    twitter: ignored
  - name: ""
annotations:
  artifacthub.io/changes: |
    - kind: added
      description: something
  category: Database
  answer: 42
  flag: true
  empty: ""
engine: gotpl
tillerVersion: ">2.0.0"
dependencies:
  - name: sub
    version: ~0.1.0
    repository: file://./charts/sub
    condition: sub.enabled
    tags: [backend, 2]
    enabled: true
    alias: sub-alias
    import-values:
      - child: exports.data
        parent: data
      - simple
      - [nested, list]
      - 1.5
"#;

#[test]
fn helm_accepts_what_cairn_publishes() -> Result<()> {
    let started = Instant::now();
    let helm_bin = helm_binary();
    let tmp = tempfile::tempdir()?;
    let root = tmp.path();
    let helm = Helm {
        bin: helm_bin,
        root: root.join("helm"),
    };
    let version = helm.ok(&["version", "--template", "{{.Version}}"], root)?;
    ensure!(version.starts_with("v3."), "need helm v3, got {version}");
    eprintln!("helm {version}");

    let work = root.join("work");
    let www = root.join("www");
    std::fs::create_dir_all(&work)?;
    std::fs::create_dir_all(&www)?;

    // Charts: demo in three versions (0.10.0 sorts above 0.2.0 only by SemVer), and
    // one with a Chart.yaml full of Helm's corner cases.
    helm.ok(&["create", "demo"], &work)?;
    let mut packages = Vec::new();
    for v in ["0.1.0", "0.2.0", "0.10.0"] {
        set_version(&work.join("demo"), v)?;
        helm.ok(
            &["package", "demo", "-d", www.to_str().context("utf8")?],
            &work,
        )?;
        packages.push(format!("demo-{v}.tgz"));
    }
    set_version(&work.join("demo"), "0.1.0")?;
    helm.ok(&["create", "rich"], &work)?;
    helm.ok(&["create", "rich/charts/sub"], &work)?;
    std::fs::write(work.join("rich/Chart.yaml"), RICH_CHART_YAML)?;
    // `helm package` rewrites Chart.yaml from what it understood, so the raw file's
    // corner cases reach `helm repo index` only in an archive packed by other means.
    let rich_file = "rich-1.2.3-rc.1+build.5.tgz";
    let tar = Command::new("tar")
        .args([
            "-czf",
            www.join(rich_file).to_str().context("utf8")?,
            "rich",
        ])
        .current_dir(&work)
        .output()?;
    ensure!(
        tar.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&tar.stderr)
    );
    packages.push(rich_file.into());

    let created = OffsetDateTime::now_utc();
    let mut entries = Vec::new();
    let mut infos = Vec::new();
    for name in &packages {
        let bytes = std::fs::read(www.join(name))?;
        let info = inspect_chart(name, &bytes[..]).with_context(|| format!("inspecting {name}"))?;
        assert_eq!(info.digests, Digests::of(&bytes));
        entries.push(index_entry(&info, name, created));
        infos.push(info);
    }
    let rich = infos.last().context("rich chart")?;
    assert_eq!(
        rich.app_version.as_deref(),
        Some("1.1"),
        "Helm reads appVersion 1.10 as 1.1"
    );
    assert_eq!(rich.chart_yaml["engine"], "gotpl");
    let index = render_index(&entries, OffsetDateTime::now_utc());
    std::fs::write(www.join("index.yaml"), &index)?;

    // Our entries equal what `helm repo index` writes for the same files.
    let reference = root.join("reference");
    std::fs::create_dir_all(&reference)?;
    for name in &packages {
        std::fs::copy(www.join(name), reference.join(name))?;
    }
    helm.ok(&["repo", "index", "."], &reference)?;
    let helm_index_text = std::fs::read_to_string(reference.join("index.yaml"))?;
    let helm_index = parse_yaml(&helm_index_text)?;
    let ours = parse_yaml(&index)?;
    for chart in ["demo", "rich"] {
        let strip = |v: &Value| -> Result<Vec<Value>> {
            let list = v["entries"][chart].as_array().context("entries")?;
            Ok(list
                .iter()
                .map(|e| {
                    let mut e = e.clone();
                    e.as_object_mut().map(|m| m.remove("created"));
                    e
                })
                .collect())
        };
        assert_eq!(
            strip(&ours)?,
            strip(&helm_index)?,
            "{chart}: our index entries differ from helm repo index\nours:\n{index}\nhelm:\n{helm_index_text}"
        );
    }
    // Byte for byte too, once the timestamps are set aside.
    let untimed = |text: &str| -> String {
        text.lines()
            .filter(|l| !l.trim_start().starts_with("created:") && !l.starts_with("generated:"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    assert_eq!(
        untimed(&index),
        untimed(&helm_index_text),
        "index.yaml layout differs from helm's"
    );

    // Serve the repository under a prefix: relative URLs must resolve against it.
    let (port, log) = serve(www.clone())?;
    let repo_url = format!("http://127.0.0.1:{port}{PREFIX}");
    helm.ok(&["repo", "add", "t", &repo_url], root)?;
    let search = helm.ok(&["search", "repo", "t/", "--versions", "--devel"], root)?;
    let demo_versions: Vec<&str> = search
        .lines()
        .filter(|l| l.starts_with("t/demo"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(demo_versions, ["0.10.0", "0.2.0", "0.1.0"], "{search}");
    assert!(search.contains("t/rich"), "{search}");
    let pulled = root.join("pulled");
    std::fs::create_dir_all(&pulled)?;
    helm.ok(
        &[
            "pull",
            "t/demo",
            "--version",
            "0.2.0",
            "-d",
            pulled.to_str().context("utf8")?,
        ],
        root,
    )?;
    assert_eq!(
        std::fs::read(pulled.join("demo-0.2.0.tgz"))?,
        std::fs::read(www.join("demo-0.2.0.tgz"))?
    );
    helm.ok(
        &[
            "pull",
            "t/rich",
            "--devel",
            "-d",
            pulled.to_str().context("utf8")?,
        ],
        root,
    )?;
    let requests = log.lock().map_err(|_| anyhow::anyhow!("log"))?.clone();
    assert!(
        requests.contains(&format!("{PREFIX}/index.yaml"))
            && requests.contains(&format!("{PREFIX}/demo-0.2.0.tgz")),
        "{requests:?}"
    );

    // Provenance signed the way Cairn signs: clearsign provenance_body with an RSA key.
    let rsa = Gpg::new(root.join("gnupg-rsa"), "T <t@example>", "rsa3072")?;
    let keyring = root.join("pub.gpg");
    std::fs::write(&keyring, rsa.ok(&["--export"])?)?;
    let keyring = keyring.to_str().context("utf8")?;
    let demo = &infos[0];
    let prov = rsa.clearsign(&provenance_body(demo, "demo-0.1.0.tgz"))?;
    check_provenance(&prov, "demo-0.1.0.tgz", &demo.digests.sha256)?;
    std::fs::write(www.join("demo-0.1.0.tgz.prov"), &prov)?;
    let verify = |dest: &str| -> Result<Output> {
        let dest = root.join(dest);
        std::fs::create_dir_all(&dest)?;
        helm.run(
            &[
                "pull",
                "t/demo",
                "--version",
                "0.1.0",
                "--verify",
                "--keyring",
                keyring,
                "-d",
                dest.to_str().context("utf8")?,
            ],
            root,
        )
    };
    let good = verify("verified")?;
    ensure!(
        good.status.success(),
        "helm pull --verify refused Cairn's provenance: {}",
        String::from_utf8_lossy(&good.stderr)
    );
    // A swapped chart fails verification.
    let original = std::fs::read(www.join("demo-0.1.0.tgz"))?;
    std::fs::copy(www.join("demo-0.2.0.tgz"), www.join("demo-0.1.0.tgz"))?;
    let swapped = verify("swapped")?;
    std::fs::write(www.join("demo-0.1.0.tgz"), &original)?;
    ensure!(
        !swapped.status.success(),
        "helm pull --verify accepted a swapped chart"
    );
    eprintln!(
        "swapped chart refused: {}",
        String::from_utf8_lossy(&swapped.stderr).trim()
    );

    // Provenance made by `helm package --sign`: check_provenance accepts it, refuses
    // it for another digest, and our body is exactly what helm signed.
    let secring = root.join("secring.gpg");
    std::fs::write(&secring, rsa.ok(&["--export-secret-keys"])?)?;
    let signed_dir = root.join("signed");
    for (chart, file) in [
        ("demo", "demo-0.1.0.tgz"),
        ("rich", "rich-1.2.3-rc.1+build.5.tgz"),
    ] {
        helm.ok(
            &[
                "package",
                "--sign",
                "--key",
                "T",
                "--keyring",
                secring.to_str().context("utf8")?,
                "-d",
                signed_dir.to_str().context("utf8")?,
                chart,
            ],
            &work,
        )?;
        let tgz = std::fs::read(signed_dir.join(file))?;
        let prov = std::fs::read(signed_dir.join(format!("{file}.prov")))?;
        let info = inspect_chart(file, &tgz[..])?;
        check_provenance(&prov, file, &info.digests.sha256)?;
        let err = check_provenance(&prov, file, &"0".repeat(64))
            .expect_err("another chart's digest must be refused");
        assert!(err.to_string().contains("checksum"), "{err}");
        assert_eq!(
            provenance_body(&info, file),
            signed_text(std::str::from_utf8(&prov)?)?,
            "{chart}: provenance text differs from helm package --sign"
        );
    }
    drop(rsa);

    // Ed25519: does helm verify a provenance signed with an EdDSA key? Reported, not
    // asserted: it decides which key type Cairn may use, not whether Cairn works.
    let ed = Gpg::new(root.join("gnupg-ed"), "E <e@example>", "ed25519")?;
    let ed_keyring = root.join("pub-ed.gpg");
    std::fs::write(&ed_keyring, ed.ok(&["--export"])?)?;
    let prov = ed.clearsign(&provenance_body(demo, "demo-0.1.0.tgz"))?;
    std::fs::write(www.join("demo-0.1.0.tgz.prov"), &prov)?;
    let dest = root.join("ed25519");
    std::fs::create_dir_all(&dest)?;
    let out = helm.run(
        &[
            "pull",
            "t/demo",
            "--version",
            "0.1.0",
            "--verify",
            "--keyring",
            ed_keyring.to_str().context("utf8")?,
            "-d",
            dest.to_str().context("utf8")?,
        ],
        root,
    )?;
    println!(
        "ED25519 FINDING: helm {} {} a provenance file clearsigned with an ed25519 key: {}{}",
        version.trim(),
        if out.status.success() {
            "ACCEPTS"
        } else {
            "REFUSES"
        },
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    drop(ed);

    eprintln!(
        "real-helm test took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
