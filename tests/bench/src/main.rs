//! `cairn-bench`: measures Cairn against the stack deployed on LocalStack.
//!
//! * `sync`: the metadata-sync worker's own time (catalog read, index generation,
//!   compression, signing, S3 writes) for one new package in an APT or YUM repository
//!   that already holds N packages. Runs the same `Publisher` as the Lambda, in
//!   process, against LocalStack's DynamoDB and S3, so the phases can be timed.
//! * `build`: the publish step alone from a catalog of N packages, against in-memory
//!   ports (CPU only); with `--from-dir`, also the time to inspect the package files.
//! * `ingest`: throughput and peak memory of ingesting a large `.deb` streamed from
//!   the staging bucket, through the same code path as `ingest-worker`.
//!
//! Packages are synthetic (realistic stanzas, or RPMs from `cairn_rpm::testutil`),
//! or with `--from-dir` the package files of a directory, as the comparison with
//! other tools uses them. Run it through `tests/bench/run.sh` or
//! `tests/bench/compare.sh`, which set up the environment.

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use bytes::Bytes;
use cairn_aws::{Clients, DynamoCatalog, S3Store, keys};
use cairn_core::ingest::{Ingestor, PackageSource, build_record, inspect_package};
use cairn_core::memory::MemoryCatalog;
use cairn_core::package::IndexEntry;
use cairn_core::ports::{Catalog, RepoStore};
use cairn_core::publish::Publisher;
use cairn_core::repo::{DistConfig, RepoFormat};
use cairn_core::{Config, PackageRecord, PackageStatus, RepoPath};
use cairn_rpm::testutil::RpmBuilder;
use clap::{Parser, Subcommand, ValueEnum};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publish latency of one new package into a repository of N packages.
    Sync {
        /// Repository to use (seeded if it has fewer than N packages).
        #[arg(long)]
        repo: String,
        /// Packages already in the repository.
        #[arg(long)]
        packages: usize,
        /// Measured rounds (one new package each).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Seed from the first N package files of this directory (by name) instead
        /// of synthetic packages.
        #[arg(long)]
        from_dir: Option<PathBuf>,
    },
    /// The publish step alone, against in-memory ports (CPU cost only).
    Build {
        /// Packages in the repository.
        #[arg(long)]
        packages: usize,
        /// Measured rounds.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Repository format.
        #[arg(long, value_enum, default_value_t = Format::Deb)]
        format: Format,
        /// Build from the first N package files of this directory (by name),
        /// inspected first (timed separately), instead of synthetic packages.
        #[arg(long)]
        from_dir: Option<PathBuf>,
    },
    /// Ingest a synthetic package of the given size from the staging bucket.
    Ingest {
        /// Package size in MiB.
        #[arg(long, default_value_t = 200)]
        size_mb: u64,
    },
}

/// The package formats the publish benchmarks cover.
#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// APT
    Deb,
    /// YUM/DNF
    Rpm,
}

/// A `/proc/self/status` memory field (e.g. `VmHWM`, `VmRSS`) in KiB.
fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// A synthetic stanza of realistic size (about 700 bytes).
fn stanza(repo: &RepoPath, i: usize) -> (String, String) {
    let name = format!("synthetic-pkg-{i:05}");
    let filename = format!("{name}_1.0-1_amd64.deb");
    let hash = format!("{:064x}", i);
    let stanza = format!(
        "Package: {name}\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: Bench <bench@cairn.invalid>\n\
Installed-Size: 1234\nDepends: libc6 (>= 2.34), libssl3 (>= 3.0.0)\nSection: misc\nPriority: optional\n\
Homepage: https://example.org/{name}\nFilename: pool/{suite}/main/s/{name}/{filename}\nSize: 123456\n\
MD5sum: {md5}\nSHA1: {sha1}\nSHA256: {hash}\nSHA512: {hash}{hash}\n\
Description: synthetic package number {i} for benchmarks\n A longer description line that makes the\n stanza about as long as a real one.\n",
        suite = repo.suite(),
        md5 = &hash[..32],
        sha1 = &hash[..40],
    );
    (filename, stanza)
}

/// A ready record for a synthetic APT package: the stanza is made up, no file exists.
fn synthetic_deb_record(repo: &RepoPath, i: usize) -> PackageRecord {
    let (filename, stanza) = stanza(repo, i);
    PackageRecord {
        repo: repo.clone(),
        filename: filename.clone(),
        product: "synthetic".into(),
        name: format!("synthetic-pkg-{i:05}"),
        version: "1.0-1".into(),
        architecture: "amd64".into(),
        size: 123_456,
        sha256: format!("{i:064x}"),
        pool_key: format!("{}/pool/{}", repo.root(), filename),
        entry: IndexEntry::Deb { stanza },
        status: PackageStatus::Ready,
        uploaded_at: 0,
        uploader: "bench".into(),
        files: Vec::new(),
    }
}

/// The ready record ingest would make of a package file.
fn record_of(
    repo: &RepoPath,
    dist: &DistConfig,
    filename: &str,
    bytes: &[u8],
) -> Result<PackageRecord> {
    let info = inspect_package(dist.format, filename, bytes)?;
    let mut record = build_record(repo, dist, filename, Some("bench"), &info, "bench", 0)?;
    record.status = PackageStatus::Ready;
    Ok(record)
}

/// A fresh package to upload in a measured round: a tiny `.deb`, or a synthetic
/// RPM with files, dependencies and a changelog.
fn new_package(format: RepoFormat, name: &str) -> Result<(String, Vec<u8>)> {
    match format {
        RepoFormat::Deb => Ok((format!("{name}_1.0_all.deb"), tiny_deb(name)?)),
        RepoFormat::Rpm => Ok((
            format!("{name}-1.0-1.x86_64.rpm"),
            RpmBuilder::rich(name).build(),
        )),
        RepoFormat::Helm => bail!("Helm repositories are not benchmarked"),
    }
}

/// `count` synthetic records: made-up APT stanzas, or synthetic RPMs inspected as
/// ingest inspects an upload.
fn synthetic_records(
    repo: &RepoPath,
    dist: &DistConfig,
    count: usize,
) -> Result<Vec<PackageRecord>> {
    (0..count)
        .map(|i| match dist.format {
            RepoFormat::Deb => Ok(synthetic_deb_record(repo, i)),
            _ => {
                let (filename, bytes) = new_package(dist.format, &format!("synthetic-pkg-{i:05}"))?;
                record_of(repo, dist, &filename, &bytes)
            }
        })
        .collect()
}

/// The first `count` package files of `dir` (by name) as ready records, and the
/// wall time spent reading and inspecting them, spread over all cores as
/// concurrent uploads would be.
fn records_from_dir(
    repo: &RepoPath,
    dist: &DistConfig,
    dir: &Path,
    count: usize,
) -> Result<(Vec<PackageRecord>, Duration)> {
    let extension = dist.format.extensions()[0];
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.retain(|p| p.to_string_lossy().ends_with(extension));
    files.sort();
    anyhow::ensure!(
        files.len() >= count,
        "{} has {} {extension} files, fewer than {count}",
        dir.display(),
        files.len()
    );
    files.truncate(count);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = count.div_ceil(threads).max(1);
    let started = Instant::now();
    let records = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|paths| {
                scope.spawn(move || {
                    paths
                        .iter()
                        .map(|path| {
                            let filename = path
                                .file_name()
                                .and_then(|n| n.to_str())
                                .context("package file names are UTF-8")?;
                            let reader = std::io::BufReader::new(std::fs::File::open(path)?);
                            let info = inspect_package(dist.format, filename, reader)?;
                            let mut record = build_record(
                                repo,
                                dist,
                                filename,
                                Some("bench"),
                                &info,
                                "bench",
                                0,
                            )?;
                            record.status = PackageStatus::Ready;
                            Ok(record)
                        })
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("inspecting does not panic"))
            .collect::<Result<Vec<Vec<_>>>>()
    })?;
    Ok((records.into_iter().flatten().collect(), started.elapsed()))
}

/// A package record as a DynamoDB item, in the layout of `cairn_aws`'s catalog.
fn record_item(record: &PackageRecord) -> Result<HashMap<String, AttributeValue>> {
    let s = |v: &str| AttributeValue::S(v.to_string());
    let n = |v: String| AttributeValue::N(v);
    anyhow::ensure!(
        record.status == PackageStatus::Ready,
        "only ready records are seeded"
    );
    Ok(HashMap::from([
        (keys::PK.to_string(), s(&keys::repo_pk(&record.repo))),
        (keys::SK.to_string(), s(&keys::package_sk(&record.filename))),
        ("repo".into(), s(&record.repo.to_string())),
        ("filename".into(), s(&record.filename)),
        ("product".into(), s(&record.product)),
        ("name".into(), s(&record.name)),
        ("version".into(), s(&record.version)),
        ("arch".into(), s(&record.architecture)),
        ("size".into(), n(record.size.to_string())),
        ("sha256".into(), s(&record.sha256)),
        ("pool_key".into(), s(&record.pool_key)),
        ("entry".into(), s(&serde_json::to_string(&record.entry)?)),
        ("status".into(), s("ready")),
        ("uploaded_at".into(), n(record.uploaded_at.to_string())),
        ("uploader".into(), s(&record.uploader)),
    ]))
}

/// Writes the records straight into the table (25 per BatchWriteItem): seeding
/// through the ingest path would take minutes and is not what is measured. The
/// pool files are not written; a sync never reads them.
async fn seed(clients: &Clients, table: &str, records: &[PackageRecord]) -> Result<()> {
    for chunk in records.chunks(25) {
        let mut pending = chunk
            .iter()
            .map(|r| {
                Ok(WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(record_item(r)?))
                            .build()?,
                    )
                    .build())
            })
            .collect::<Result<Vec<_>>>()?;
        while !pending.is_empty() {
            let out = clients
                .dynamodb
                .batch_write_item()
                .request_items(table, pending)
                .send()
                .await?;
            pending = out
                .unprocessed_items
                .and_then(|mut m| m.remove(table))
                .unwrap_or_default();
        }
    }
    Ok(())
}

fn tiny_deb(name: &str) -> Result<Vec<u8>> {
    let control = format!(
        "Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: Bench <b@cairn.invalid>\nDescription: bench\n"
    );
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(control.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "./control", control.as_bytes())?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar.into_inner()?)?;
    let control_tgz = gz.finish()?;
    let mut out = b"!<arch>\n".to_vec();
    for (member, data) in [
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar.gz", control_tgz),
        ("data.tar", vec![0u8; 1024]),
    ] {
        out.extend(
            format!(
                "{member:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                0,
                0,
                0,
                100644,
                data.len()
            )
            .as_bytes(),
        );
        out.extend(&data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    Ok(out)
}

fn median(v: &mut [u128]) -> String {
    v.sort_unstable();
    v.get(v.len() / 2)
        .map_or("-".to_string(), |m| m.to_string())
}

async fn bench_sync(
    config: &Config,
    repo: &str,
    packages: usize,
    rounds: usize,
    from_dir: Option<&Path>,
) -> Result<()> {
    let clients = Clients::load().await;
    let catalog = DynamoCatalog::new(clients.dynamodb.clone(), &config.table);
    let store = S3Store::new(
        clients.s3.clone(),
        &config.repo_bucket,
        &config.staging_bucket,
    );
    let repo = RepoPath::parse(repo)?;
    let dist = config.supported.check(&repo)?;
    let existing = catalog.list_packages(&repo).await?.len();
    if existing < packages {
        let records = match from_dir {
            Some(dir) => records_from_dir(&repo, dist, dir, packages)?.0,
            None => synthetic_records(&repo, dist, packages)?,
        };
        let t = Instant::now();
        seed(&clients, &config.table, &records).await?;
        eprintln!(
            "seeded {packages} packages in {:.1}s",
            t.elapsed().as_secs_f64()
        );
    }
    let armored = std::fs::read_to_string(
        std::env::var("CAIRN_SIGNING_KEY_FILE").context("CAIRN_SIGNING_KEY_FILE")?,
    )?;
    let signer = cairn_sign::PgpSigner::from_armored(&armored)?;
    // The sync queue is not under test: sync requests go to a fake.
    let queue = MemoryCatalog::default();
    let ingestor = Ingestor {
        catalog: &catalog,
        store: &store,
        queue: &queue,
        supported: &config.supported,
    };
    // The first half of the rounds run in one warm worker; the second half each in a
    // fresh (cold) worker with an empty snapshot cache.
    let warm_cache = cairn_core::publish::SnapshotCache::default();
    let (mut warm, mut cold, mut full, mut ingest) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let cold_cache = cairn_core::publish::SnapshotCache::default();
        let publisher = Publisher {
            catalog: &catalog,
            store: &store,
            signer: &signer,
            supported: &config.supported,
            origin: "Cairn",
            base_url: &config.repo_base_url,
            api_url: None,
            cache: if round < rounds / 2 {
                &warm_cache
            } else {
                &cold_cache
            },
            superseded_grace_secs: 3600,
        };
        let name = format!(
            "bench-new-{}-{round}",
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        );
        let (filename, bytes) = new_package(dist.format, &name)?;
        // What the ingest worker does with an upload: inspect, claim, pool copy,
        // ready, change log. Timed apart from the sync.
        let t = Instant::now();
        let record = record_of(&repo, dist, &filename, &bytes)?;
        ingestor
            .store(
                PackageRecord {
                    status: PackageStatus::Pending,
                    ..record
                },
                PackageSource::Bytes(Bytes::from(bytes)),
                Vec::new(),
            )
            .await?;
        let seq = catalog.note_change(&repo, &[filename]).await?;
        let ingest_ms = t.elapsed().as_millis();
        ingest.push(ingest_ms);
        let t = Instant::now();
        let report = publisher
            .sync(&repo, seq, time::OffsetDateTime::now_utc())
            .await?;
        let total = t.elapsed().as_millis();
        anyhow::ensure!(report.rebuilt, "sync did not rebuild");
        println!(
            "sync packages={} baseline={} total_ms={total} catalog_ms={} build_ms={} write_ms={} record_ms={} pieces_compressed={} pieces_reused={} bytes_written={} ingest_ms={ingest_ms}",
            report.packages,
            report.baseline,
            report.catalog_ms,
            report.build_ms,
            report.write_ms,
            report.record_ms,
            report.pieces_compressed,
            report.pieces_reused,
            report.bytes_written
        );
        match report.baseline {
            cairn_core::publish::Baseline::Cache => warm.push(total),
            cairn_core::publish::Baseline::Published => cold.push(total),
            cairn_core::publish::Baseline::Full => full.push(total),
        }
    }
    println!(
        "RESULT sync format={} packages={} warm_rounds={} warm_median_ms={} cold_rounds={} cold_median_ms={} full_rounds={} full_median_ms={} ingest_median_ms={}",
        format_name(dist.format),
        packages,
        warm.len(),
        median(&mut warm),
        cold.len(),
        median(&mut cold),
        full.len(),
        median(&mut full),
        median(&mut ingest)
    );
    Ok(())
}

fn format_name(format: RepoFormat) -> &'static str {
    match format {
        RepoFormat::Deb => "deb",
        RepoFormat::Rpm => "rpm",
        RepoFormat::Helm => "helm",
    }
}

async fn bench_ingest(config: &Config, size_mb: u64) -> Result<()> {
    let clients = Clients::load().await;
    let store = S3Store::new(
        clients.s3.clone(),
        &config.repo_bucket,
        &config.staging_bucket,
    );
    // Generate the package on disk, streaming, so generation does not count.
    let dir = std::env::temp_dir().join("cairn-bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("bench-big_1.0_all.deb");
    {
        let head = tiny_deb("bench-big")?;
        // Replace the 1 KiB data member of the tiny package by a large one.
        let cut = head.len() - 1024 - 60;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        f.write_all(&head[..cut])?;
        let size = size_mb * 1024 * 1024;
        f.write_all(
            format!(
                "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                "data.tar", 0, 0, 0, 100644, size
            )
            .as_bytes(),
        )?;
        let block = vec![0x5au8; 1 << 20];
        for _ in 0..size_mb {
            f.write_all(&block)?;
        }
        f.flush()?;
    }
    // Outside incoming/, so the deployed ingest-worker leaves it alone.
    let key = "bench/bench-big_1.0_all.deb";
    clients
        .s3
        .put_object()
        .bucket(&config.staging_bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from_path(&path).await?)
        .send()
        .await?;
    let _ = store.put("bench/.keep", Bytes::new(), "text/plain").await;
    // Reset the peak-RSS counter so it reflects the ingest only.
    std::fs::write("/proc/self/clear_refs", "5").ok();
    let baseline = proc_status_kib("VmRSS");
    let t = Instant::now();
    let (body, _etag) = store.open_staging(key).await?;
    let reader = tokio_util::io::SyncIoBridge::new(body.into_async_read());
    let info = tokio::task::spawn_blocking(move || cairn_deb::inspect_deb(reader))
        .await?
        .map_err(|e| {
            let mut msg = format!("{e:?}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            anyhow::anyhow!(msg)
        })?;
    let secs = t.elapsed().as_secs_f64();
    let peak = proc_status_kib("VmHWM");
    let mb = info.digests.size as f64 / 1048576.0;
    println!(
        "RESULT ingest size_mib={mb:.0} seconds={secs:.2} mib_per_s={:.0} rss_baseline_mib={:.1} rss_peak_mib={:.1} above_baseline_mib={:.1}",
        mb / secs,
        baseline as f64 / 1024.0,
        peak as f64 / 1024.0,
        peak.saturating_sub(baseline) as f64 / 1024.0
    );
    store.delete_staging(key).await?;
    std::fs::remove_file(&path)?;
    Ok(())
}

async fn bench_build(
    format: Format,
    packages: usize,
    rounds: usize,
    from_dir: Option<&Path>,
) -> Result<()> {
    use cairn_core::memory::MemoryStore;
    let supported: cairn_core::SupportedRepos = serde_json::from_str(
        r#"{"kinds":["live"],"series":["1"],"dists":{
            "ubuntu":{"format":"deb","versions":["focal"]},
            "el":{"format":"rpm","versions":["8"]}}}"#,
    )?;
    let repo = RepoPath::parse(match format {
        Format::Deb => "live/1/ubuntu/focal",
        Format::Rpm => "live/1/el/8",
    })?;
    let dist = supported.check(&repo)?;
    let records = match from_dir {
        Some(dir) => {
            let (records, took) = records_from_dir(&repo, dist, dir, packages)?;
            println!(
                "RESULT inspect format={} packages={packages} threads={} ms={}",
                format_name(dist.format),
                std::thread::available_parallelism().map_or(1, |n| n.get()),
                took.as_millis()
            );
            records
        }
        None => synthetic_records(&repo, dist, packages)?,
    };
    let catalog = MemoryCatalog::default();
    for record in &records {
        catalog.claim_package(record).await?;
    }
    let armored = std::fs::read_to_string(
        std::env::var("CAIRN_SIGNING_KEY_FILE").context("CAIRN_SIGNING_KEY_FILE")?,
    )?;
    let signer = cairn_sign::PgpSigner::from_armored(&armored)?;
    let store = MemoryStore::default();
    let cache = cairn_core::publish::SnapshotCache::default();
    let publisher = Publisher {
        catalog: &catalog,
        store: &store,
        signer: &signer,
        supported: &supported,
        origin: "Cairn",
        base_url: "https://repo.example",
        api_url: None,
        cache: &cache,
        superseded_grace_secs: 3600,
    };
    let mut totals = Vec::new();
    for _ in 0..rounds {
        let seq = catalog.note_change(&repo, &[]).await?;
        let t = Instant::now();
        let report = publisher
            .sync(&repo, seq, time::OffsetDateTime::now_utc())
            .await?;
        totals.push(t.elapsed().as_millis());
        println!(
            "build packages={} build_ms={} total_ms={}",
            report.packages,
            report.build_ms,
            totals[totals.len() - 1]
        );
    }
    println!(
        "RESULT build format={} packages={packages} median_ms={}",
        format_name(dist.format),
        median(&mut totals)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let command = Cli::parse().command;
    if let Command::Build {
        packages,
        rounds,
        format,
        from_dir,
    } = command
    {
        return bench_build(format, packages, rounds, from_dir.as_deref()).await;
    }
    let config = Config::from_env()?;
    match command {
        Command::Build { .. } => unreachable!("handled above"),
        Command::Sync {
            repo,
            packages,
            rounds,
            from_dir,
        } => bench_sync(&config, &repo, packages, rounds, from_dir.as_deref()).await,
        Command::Ingest { size_mb } => bench_ingest(&config, size_mb).await,
    }
}
