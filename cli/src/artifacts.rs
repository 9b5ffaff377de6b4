//! The artifact store from the client's side: bytes go straight to and from the
//! object store through presigned URLs, hashed on the way (SHA-256); folders travel
//! as `.tar.gz` blobs (a build's workspace, an `artifact` action's paths).
//!
//! `cairn artifact put|get|list|delete` are the commands; the worker uses the same
//! functions.

use crate::remote::{Api, Failure, Outcome};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokio::io::AsyncWriteExt;

/// A blob stored: its SHA-256, size, and whether the project had it already.
pub struct Stored {
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
    /// Whether nothing was sent (the project had these bytes).
    pub deduplicated: bool,
}

impl Stored {
    /// `N files, S MiB, sha256:…`, and whether the store had them already (for logs).
    pub fn describe(&self, files: usize) -> String {
        format!(
            "{files} files, {:.1} MiB, sha256:{}{}",
            mib(self.size),
            self.sha256,
            if self.deduplicated {
                " (stored already)"
            } else {
                ""
            }
        )
    }
}

/// The SHA-256 and size of a file.
pub async fn digest(file: &Path) -> std::io::Result<(String, u64)> {
    let file = file.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut reader = std::fs::File::open(file)?;
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        Ok((hex::encode(hasher.finalize()), size))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Stores `file` as a blob of `project`: nothing is sent if the project has it.
pub async fn store(api: &Api, project: &str, file: &Path) -> Outcome<Stored> {
    let (sha256, size) = digest(file)
        .await
        .map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
    let answer = api
        .expect(
            Method::POST,
            &format!("/v1/projects/{project}/blobs"),
            Some(&json!({"sha256": sha256, "size": size})),
            200,
            "store a blob",
        )
        .await?;
    if answer["stored"] == true {
        return Ok(Stored {
            sha256,
            size,
            deduplicated: true,
        });
    }
    let upload = &answer["upload"];
    let url = upload["url"]
        .as_str()
        .ok_or_else(|| Failure::network("the answer has no upload URL"))?;
    let handle = tokio::fs::File::open(file)
        .await
        .map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
    let stream = tokio_util::io::ReaderStream::with_capacity(handle, 1 << 20);
    let mut put = api
        .http
        .put(url)
        .header("content-length", size)
        .body(reqwest::Body::wrap_stream(stream));
    for (k, v) in upload["headers"].as_object().into_iter().flatten() {
        if let (Some(v), false) = (v.as_str(), k.eq_ignore_ascii_case("content-length")) {
            put = put.header(k.as_str(), v);
        }
    }
    let response = put
        .send()
        .await
        .map_err(|e| Failure::network(format!("upload to the artifact store: {e}")))?;
    if !response.status().is_success() {
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        return Err(Failure::network(format!(
            "upload to the artifact store: {status} {}",
            text.chars().take(300).collect::<String>()
        )));
    }
    Ok(Stored {
        sha256,
        size,
        deduplicated: false,
    })
}

/// Downloads the presigned request `download` into `dest`, checking that the bytes
/// hash to `sha256`; their size.
pub async fn download(
    api: &Api,
    download: &Value,
    sha256: &str,
    dest: &Path,
) -> Result<u64, String> {
    let url = download["url"].as_str().ok_or("no download URL")?;
    let mut get = api.http.get(url);
    for (k, v) in download["headers"].as_object().into_iter().flatten() {
        if let Some(v) = v.as_str() {
            get = get.header(k.as_str(), v);
        }
    }
    let response = get.send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let mut out = tokio::fs::File::create(dest)
        .await
        .map_err(|e| format!("{}: {e}", dest.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut size = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        out.write_all(&chunk)
            .await
            .map_err(|e| format!("{}: {e}", dest.display()))?;
    }
    out.flush().await.map_err(|e| e.to_string())?;
    let got = hex::encode(hasher.finalize());
    if got != sha256 {
        let _ = tokio::fs::remove_file(dest).await;
        return Err(format!(
            "the bytes hash to sha256:{got}, not sha256:{sha256}"
        ));
    }
    Ok(size)
}

/// Writes a `.tar.gz` of `paths` (relative to `root`, files or folders) to `out`, in
/// name order so the same tree gives the same bytes; symbolic links are kept as
/// links, never followed. The number of files.
pub fn pack(root: &Path, paths: &[PathBuf], out: &Path) -> std::io::Result<usize> {
    let file = std::fs::File::create(out)?;
    let gzip =
        flate2::write::GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gzip);
    builder.follow_symlinks(false);
    let mut files = 0;
    let mut sorted = paths.to_vec();
    sorted.sort();
    sorted.dedup();
    for path in sorted {
        files += add(&mut builder, root, &path)?;
    }
    builder.into_inner()?.finish()?.flush()?;
    Ok(files)
}

fn add<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    relative: &Path,
) -> std::io::Result<usize> {
    let full = root.join(relative);
    let kind = std::fs::symlink_metadata(&full)?.file_type();
    builder.append_path_with_name(&full, relative)?;
    if !kind.is_dir() {
        return Ok(usize::from(kind.is_file()));
    }
    let mut names: Vec<_> = std::fs::read_dir(&full)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    let mut files = 0;
    for name in names {
        files += add(builder, root, &relative.join(name))?;
    }
    Ok(files)
}

/// Every entry of `root` (its top level), for packing a whole folder.
pub fn top_level(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::read_dir(root)?
        .map(|e| e.map(|e| PathBuf::from(e.file_name())))
        .collect()
}

/// Unpacks the `.tar.gz` `tarball` into `dir` (which must exist): nothing may leave
/// it, through `..`, an absolute path or a symbolic link (the tar crate's
/// `unpack_in`). The number of files.
pub fn unpack_into(tarball: &Path, dir: &Path) -> std::io::Result<usize> {
    let file = std::fs::File::open(tarball)?;
    let mut archive =
        tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    archive.set_preserve_mtime(true);
    let mut files = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.unpack_in(dir)? && entry.header().entry_type().is_file() {
            files += 1;
        }
    }
    Ok(files)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

/// `cairn artifact put PROJECT NAME FILE`.
pub async fn put(project: &str, name: &str, file: &Path) -> Outcome {
    let api = Api::logged_in()?;
    let started = Instant::now();
    let stored = store(&api, project, file).await?;
    let seconds = started.elapsed().as_secs_f64();
    let artifact = api
        .expect(
            Method::PUT,
            &format!("/v1/projects/{project}/artifacts/{name}"),
            Some(&json!({"sha256": stored.sha256})),
            200,
            "name the artifact",
        )
        .await?;
    eprintln!(
        "{name}: {:.1} MiB {} in {seconds:.1} s (sha256:{})",
        mib(stored.size),
        if stored.deduplicated {
            "stored already, nothing sent"
        } else {
            "uploaded"
        },
        stored.sha256
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&artifact).unwrap_or_default()
    );
    Ok(())
}

/// `cairn artifact get PROJECT NAME [--output FILE]`.
pub async fn get(project: &str, name: &str, output: Option<&Path>) -> Outcome {
    let api = Api::logged_in()?;
    let artifact = api
        .expect(
            Method::GET,
            &format!("/v1/projects/{project}/artifacts/{name}"),
            None,
            200,
            "read the artifact",
        )
        .await?;
    let dest = output.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    let sha256 = artifact["sha256"].as_str().unwrap_or_default();
    let started = Instant::now();
    let size = download(&api, &artifact["download"], sha256, &dest)
        .await
        .map_err(|e| Failure::network(format!("download {name}: {e}")))?;
    eprintln!(
        "{}: {:.1} MiB in {:.1} s, sha256:{sha256} checked",
        dest.display(),
        mib(size),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `cairn artifact list PROJECT`.
pub async fn list(project: &str) -> Outcome {
    let api = Api::logged_in()?;
    let answer = api
        .expect(
            Method::GET,
            &format!("/v1/projects/{project}/artifacts"),
            None,
            200,
            "list artifacts",
        )
        .await?;
    for a in answer["artifacts"].as_array().into_iter().flatten() {
        println!(
            "{}\t{}\tsha256:{}\t{}",
            a["name"].as_str().unwrap_or_default(),
            a["size"],
            a["sha256"].as_str().unwrap_or_default(),
            a["build"].as_str().unwrap_or("-"),
        );
    }
    Ok(())
}

/// `cairn artifact delete PROJECT NAME`.
pub async fn delete(project: &str, name: &str) -> Outcome {
    let api = Api::logged_in()?;
    api.expect(
        Method::DELETE,
        &format!("/v1/projects/{project}/artifacts/{name}"),
        None,
        204,
        "delete the artifact",
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_packs_to_the_same_bytes_and_unpacks_whole() {
        let root = tempfile::tempdir().expect("tmp");
        let src = root.path().join("ws");
        std::fs::create_dir_all(src.join("out/sub")).expect("dirs");
        for (f, data) in [("a.txt", "a"), ("out/b.deb", "bb"), ("out/sub/c", "ccc")] {
            std::fs::write(src.join(f), data).expect("file");
        }
        std::os::unix::fs::symlink("../a.txt", src.join("out/link")).expect("link");
        let (one, two) = (root.path().join("1.tgz"), root.path().join("2.tgz"));
        assert_eq!(
            pack(&src, &top_level(&src).expect("top"), &one).expect("pack"),
            3
        );
        pack(&src, &top_level(&src).expect("top"), &two).expect("pack");
        assert_eq!(
            std::fs::read(&one).expect("1"),
            std::fs::read(&two).expect("2"),
            "the same tree packs to the same bytes"
        );
        let dest = root.path().join("restored");
        std::fs::create_dir_all(&dest).expect("dest");
        assert_eq!(unpack_into(&one, &dest).expect("unpack"), 3);
        assert_eq!(std::fs::read(dest.join("out/sub/c")).expect("c"), b"ccc");
        assert_eq!(
            std::fs::read_link(dest.join("out/link")).expect("link"),
            Path::new("../a.txt")
        );
    }
}
