//! `cairn`: the Cairn command-line tool: manages the accounts that may upload
//! (`cairn user add`), prints password hashes, and shows the metadata Cairn would
//! publish for a package (`cairn inspect`: a `Packages` stanza for a `.deb`, the
//! `primary.xml` element for an `.rpm`, the `index.yaml` entry for a chart), and
//! verifies a published repository (`cairn verify`) or checks every integrity
//! invariant of a deployment's repositories against its catalog (`cairn fsck`).

use anyhow::{Context, Result, bail};
use cairn_aws::{Clients, DynamoCatalog, S3Store};
use cairn_core::access::Role;
use cairn_core::auth::{MAX_USER_NAME, UserRecord, hash_password};
use cairn_core::fsck::Fsck;
use cairn_core::ingest::{Inspected, inspect_package};
use cairn_core::ports::UserDirectory;
use cairn_core::ports::{Catalog, RepoStore};
use cairn_core::repo::RepoFormat;
use cairn_core::verify::Verifier;
use cairn_core::{RepoPath, SupportedRepos};
use cairn_sign::PgpVerifier;
use clap::{Parser, Subcommand};
use std::io::Read;

use cairn::{artifacts, builds, remote, repos, worker};

#[derive(Parser)]
#[command(version, about = "Cairn command-line tool")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage upload accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Print the metadata Cairn publishes for a `.deb`, `.rpm` or chart `.tgz`.
    Inspect {
        /// The package file.
        file: std::path::PathBuf,
        /// `Filename` field to write (default: the file's name).
        #[arg(long)]
        filename: Option<String>,
    },
    /// Check a published repository: signatures verify with the trusted keys, and
    /// every file its metadata names exists with the stated size and SHA-256.
    /// Reads only. Exits 1 when something is wrong.
    Verify {
        /// Repository path, e.g. `release/2.11/ubuntu/jammy` or `release/3.0/el/9`.
        repo: String,
        /// The repository bucket.
        #[arg(long, env = "CAIRN_REPO_BUCKET")]
        bucket: String,
        /// Trusted public keys (binary or armoured keyring), as clients hold them.
        #[arg(long)]
        keyring: std::path::PathBuf,
        /// Repository format; default: from CAIRN_SUPPORTED_REPOS, else guessed
        /// from what the bucket holds.
        #[arg(long, value_parser = ["deb", "rpm", "helm"])]
        format: Option<String>,
    },
    /// Check the integrity invariants of repositories: `verify`, plus, against the
    /// catalog: a settled repository's metadata names exactly its ready packages'
    /// files, every package's files are claimed for it with the bytes the bucket
    /// holds, and no pool object, pending upload or deletion is left behind.
    /// Reads only. Exits 1 when something is wrong.
    Fsck(FsckArgs),
    /// Log in to a Cairn API: store a token (0600) in the config folder. With
    /// `--user`, the password read from standard input is exchanged for a token with
    /// the account's scopes; without, standard input is a token.
    Login {
        /// The API's URL, stage included.
        #[arg(long, env = "CAIRN_API_URL")]
        api: String,
        /// Log in with this account's password instead of a token.
        #[arg(long)]
        user: Option<String>,
        /// Lifetime of the token a password login issues, days.
        #[arg(long, default_value_t = 30)]
        expires_in_days: u32,
    },
    /// Show the logged-in credential's account and scopes.
    Whoami,
    /// Upload packages: one request per file, presigned above `--presign-above`;
    /// with `--wait`, return when the signed index lists them. Exit codes: 0 done,
    /// 1 a file refused, 2 usage or no login, 3 credentials refused, 4 server or
    /// network failure, 5 `--wait` timed out.
    Push {
        /// The package files.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// The repository (`release/2.11/ubuntu/jammy`) or an anchor.
        #[arg(long)]
        repo: String,
        /// RWS `product` field.
        #[arg(long)]
        product: Option<String>,
        /// Wait until the repository's signed index lists the files.
        #[arg(long)]
        wait: bool,
        /// Longest `--wait`, seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Files larger than this many bytes go through a presigned upload (the
        /// API takes bodies up to its `MaxApiUpload`, 4 MiB by default).
        #[arg(long, default_value_t = 3 * 1024 * 1024)]
        presign_above: u64,
    },
    /// Manage access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage repositories (create, list, show, delete).
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Print the OpenAPI 3.1 document of every API route (JSON), generated from the
    /// route descriptions in the code (docs/openapi.json is its output).
    Openapi,
    /// Define or update a build project from its YAML file (checked here first:
    /// a mistake is shown with its line).
    Apply {
        /// The project file.
        file: std::path::PathBuf,
        /// The project's name (default: the file's `project:`).
        #[arg(long)]
        project: Option<String>,
    },
    /// Start, follow, list and cancel builds.
    #[command(subcommand)]
    Build(BuildCommand),
    /// Store, fetch, list and delete a project's artifacts (content-addressed:
    /// the same bytes are stored once).
    #[command(subcommand)]
    Artifact(ArtifactCommand),
    /// Run a build worker: take jobs from the API (needs a token with the `worker`
    /// scope), run them, stream their output, report their exit codes.
    Worker {
        /// The worker's name in build records (default: the host name).
        #[arg(long)]
        name: Option<String>,
        /// A label the worker has (repeat): `arch=amd64`, `dpkg`; it takes jobs
        /// that ask for no label it lacks.
        #[arg(long = "label")]
        labels: Vec<String>,
        /// Where build workspaces go.
        #[arg(long, default_value = "cairn-work")]
        workdir: std::path::PathBuf,
        /// Stop after one job.
        #[arg(long)]
        once: bool,
    },
}

#[derive(Subcommand)]
enum BuildCommand {
    /// Build a project; prints the build's id.
    Start {
        /// The project.
        project: String,
        /// A parameter's value (repeat): `version=1.2`.
        #[arg(long = "param")]
        parameters: Vec<String>,
        /// Follow the build to its end; exit 1 unless it succeeded.
        #[arg(long)]
        wait: bool,
        /// With --wait, print the steps' logs as they come.
        #[arg(long)]
        log: bool,
    },
    /// Show a build (JSON): state, steps, exit codes, workers, outputs.
    Show {
        /// The build's id.
        id: String,
    },
    /// A project's builds, newest first.
    List {
        /// The project.
        project: String,
    },
    /// Print a step's log.
    Log {
        /// The build's id.
        id: String,
        /// The step (0-based).
        #[arg(long, default_value_t = 0)]
        step: usize,
        /// Every step's log until the build ends.
        #[arg(long)]
        follow: bool,
    },
    /// Cancel a build.
    Cancel {
        /// The build's id.
        id: String,
    },
}

#[derive(Subcommand)]
enum ArtifactCommand {
    /// Upload a file as a project's artifact (nothing is sent if the project has
    /// these bytes already).
    Put {
        /// The project.
        project: String,
        /// The artifact's name.
        name: String,
        /// The file.
        file: std::path::PathBuf,
    },
    /// Download an artifact, checking its SHA-256.
    Get {
        /// The project.
        project: String,
        /// The artifact's name.
        name: String,
        /// Where to write it (default: its name, in this folder).
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
    /// A project's artifacts: name, size, SHA-256, the build that saved it.
    List {
        /// The project.
        project: String,
    },
    /// Forget an artifact's name (its bytes go when their retention ends).
    Delete {
        /// The project.
        project: String,
        /// The artifact's name.
        name: String,
    },
}

#[derive(clap::Args)]
struct FsckArgs {
    /// Repository paths to check; default: every configured repository that has
    /// ever changed. A repository named here must exist and be published.
    repos: Vec<String>,
    /// The DynamoDB table of the deployed stack.
    #[arg(long, env = "CAIRN_TABLE")]
    table: String,
    /// The repository bucket.
    #[arg(long, env = "CAIRN_REPO_BUCKET")]
    bucket: String,
    /// Trusted public keys (binary or armoured keyring).
    #[arg(long)]
    keyring: std::path::PathBuf,
    /// The deployment's SupportedRepos JSON (the template parameter), or `@FILE`.
    #[arg(long, env = "CAIRN_SUPPORTED_REPOS")]
    supported_repos: String,
    /// Seconds after which an unreferenced pool object, a pending upload or an
    /// unfinished deletion counts as a problem rather than work in progress.
    #[arg(long, default_value_t = 900)]
    grace_seconds: i64,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create or replace an account; the password is read from standard input.
    /// Replacing an account (new password or role) revokes every token it had.
    Add {
        /// Login name.
        name: String,
        /// The DynamoDB table of the deployed stack.
        #[arg(long, env = "CAIRN_TABLE")]
        table: String,
        /// Store this existing hash (werkzeug `pbkdf2:sha256:…` or argon2 PHC)
        /// instead of reading a password, e.g. when migrating RWS users.
        #[arg(long)]
        hash: Option<String>,
        /// What the account's password may do: `admin` (everything), `uploader`
        /// (upload, delete, archive, read; its own webhooks, events and tokens) or
        /// `reader` (read; its own events and tokens). Tokens it issues hold at
        /// most these scopes.
        #[arg(long, default_value = "uploader", value_parser = ["admin", "uploader", "reader"])]
        role: String,
        /// A label selector (repeat): private repositories whose labels it matches
        /// are visible to the account, e.g. `team=db,env in (prod,stage)`.
        #[arg(long = "selector")]
        selectors: Vec<String>,
    },
    /// Print the argon2id hash of the password read from standard input.
    Hash,
}

#[derive(Subcommand)]
enum RepoCommand {
    /// Create a repository you own; prints it.
    Create {
        /// Where: kind/series/dist/version (`team/db/ubuntu/noble`); an archive
        /// repository's is `archive/<name>`.
        path: String,
        /// What it holds: packages, or source archives under a name.
        #[arg(long, value_parser = ["apt", "yum", "helm", "archive"])]
        format: String,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
        /// Only its owners, admins and accounts whose selectors match its labels see it.
        #[arg(long)]
        private: bool,
        /// A label (repeat): `team=db`.
        #[arg(long = "label")]
        labels: Vec<String>,
        /// A further owner (repeat).
        #[arg(long = "owner")]
        owners: Vec<String>,
    },
    /// List the repositories you see: path, format, visibility, owners, labels.
    List {
        /// Only those whose labels match: `team=db,env in (prod,stage)`.
        #[arg(long)]
        selector: Option<String>,
    },
    /// Show one repository (JSON).
    Show {
        /// kind/series/dist/version.
        path: String,
    },
    /// Delete a repository you own.
    Delete {
        /// kind/series/dist/version.
        path: String,
        /// Delete it even if it has packages: they and their files go too.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a token; prints the token alone on standard output (shown once).
    Create {
        /// A scope (repeat): `upload:release/2.11/*`, `webhooks`, ... (docs/access.md).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
        /// Lifetime, days.
        #[arg(long, default_value_t = 30)]
        expires_in_days: u32,
    },
    /// List the account's tokens (never their secrets).
    List,
    /// Revoke a token.
    Revoke {
        /// The token's id.
        id: String,
    },
}

fn read_password() -> Result<String> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("empty password on standard input");
    }
    Ok(password)
}

/// YUM folders probed when the configuration does not say.
const COMMON_RPM_ARCHES: [&str; 6] = ["x86_64", "aarch64", "noarch", "i686", "ppc64le", "s390x"];

async fn verify(
    repo: &str,
    bucket: String,
    keyring: &std::path::Path,
    format: Option<&str>,
) -> Result<bool> {
    let repo = RepoPath::parse(repo)?;
    let keys = std::fs::read(keyring)
        .with_context(|| format!("reading the keyring {}", keyring.display()))?;
    let keys = PgpVerifier::from_keyring(&keys).context("loading the keyring")?;
    let clients = Clients::load().await;
    let store = S3Store::new(clients.s3, bucket, "");
    // A configuration that is set must be readable: guessing instead would check
    // the wrong thing and report success.
    let configured = match std::env::var("CAIRN_SUPPORTED_REPOS") {
        Ok(json) => Some(
            serde_json::from_str::<SupportedRepos>(&json)
                .context("CAIRN_SUPPORTED_REPOS is not a SupportedRepos JSON document")?
                .check(&repo)?
                .clone(),
        ),
        Err(_) => None,
    };
    let format = match (format, &configured) {
        (Some("deb"), _) => RepoFormat::Deb,
        (Some("rpm"), _) => RepoFormat::Rpm,
        (Some("helm"), _) => RepoFormat::Helm,
        (Some(other), _) => bail!("unknown format {other:?}"),
        (None, Some(dist)) => dist.format,
        (None, None) => {
            let inrelease = format!("{}/dists/{}/InRelease", repo.root(), repo.suite());
            if store.get(&inrelease).await?.is_some() {
                RepoFormat::Deb
            } else if store
                .get(&format!("{}/index.yaml", repo.dir()))
                .await?
                .is_some()
            {
                RepoFormat::Helm
            } else {
                RepoFormat::Rpm
            }
        }
    };
    let arches: Vec<String> = match &configured {
        Some(dist) => dist.architectures(),
        None => {
            let mut found = Vec::new();
            for arch in COMMON_RPM_ARCHES {
                let key = format!("{}/{arch}/repodata/repomd.xml", repo.dir());
                if store.get(&key).await?.is_some() {
                    found.push(arch.to_string());
                }
            }
            found
        }
    };
    let report = Verifier {
        store: &store,
        keys: &keys,
    }
    .verify(&repo, format, &arches)
    .await?;
    for note in &report.notes {
        println!("note: {note}");
    }
    for problem in &report.problems {
        println!("PROBLEM: {problem}");
    }
    println!(
        "{repo} ({format:?}): {} signature(s) verified, {} file(s) checked, {} problem(s)",
        report.signatures_checked,
        report.files_checked,
        report.problems.len()
    );
    Ok(report.ok())
}

async fn fsck(args: FsckArgs) -> Result<bool> {
    let json = match args.supported_repos.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading --supported-repos file {path}"))?,
        None => args.supported_repos.clone(),
    };
    let supported: SupportedRepos = serde_json::from_str(&json)
        .context("--supported-repos is not a SupportedRepos JSON document")?;
    let keys = std::fs::read(&args.keyring)
        .with_context(|| format!("reading the keyring {}", args.keyring.display()))?;
    let keys = PgpVerifier::from_keyring(&keys).context("loading the keyring")?;
    let clients = Clients::load().await;
    let store = S3Store::new(clients.s3, args.bucket, "");
    let catalog = DynamoCatalog::new(clients.dynamodb, args.table);
    let explicit = !args.repos.is_empty();
    let repos: Vec<RepoPath> = if explicit {
        args.repos
            .iter()
            .map(|r| RepoPath::parse(r))
            .collect::<Result<_, _>>()?
    } else {
        let mut all = Vec::new();
        for kind in &supported.kinds {
            for series in &supported.series {
                for (dist, config) in &supported.dists {
                    for version in &config.versions {
                        all.push(RepoPath::new(kind, series, dist, version)?);
                    }
                }
            }
        }
        all
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let checker = Fsck {
        catalog: &catalog,
        store: &store,
        keys: &keys,
        grace_secs: args.grace_seconds,
        now,
    };
    let mut all_ok = true;
    let mut checked = 0;
    for repo in repos {
        let dist = supported.check(&repo)?;
        if !explicit && catalog.repo_state(&repo).await?.change_seq == 0 {
            continue;
        }
        checked += 1;
        let report = checker.check(&repo, dist).await?;
        for problem in report.verify.problems.iter().chain(&report.problems) {
            println!("PROBLEM: {problem}");
        }
        println!(
            "{repo}: {} ready package(s), {} claim(s), {} pool object(s), {} published file(s) checked, {} problem(s)",
            report.ready,
            report.claims,
            report.pool_objects,
            report.verify.files_checked,
            report.verify.problems.len() + report.problems.len()
        );
        all_ok &= report.ok();
    }
    if checked == 0 {
        println!("no repository has changed yet: nothing to check");
    }
    Ok(all_ok)
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Inspect { file, filename } => {
            let reader = std::io::BufReader::new(
                std::fs::File::open(&file)
                    .with_context(|| format!("opening {}", file.display()))?,
            );
            let filename = filename.unwrap_or_else(|| {
                file.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
            let format = if filename.ends_with(".rpm") {
                RepoFormat::Rpm
            } else if filename.ends_with(".tgz") {
                RepoFormat::Helm
            } else {
                RepoFormat::Deb
            };
            let inspected = inspect_package(format, &filename, reader)
                .with_context(|| format!("inspecting {}", file.display()))?;
            match inspected {
                Inspected::Deb(info) => print!(
                    "{}",
                    cairn_deb::packages_stanza(&info.control, &filename, &info.digests)
                ),
                Inspected::Rpm(info) => {
                    println!("{}", info.primary_xml(&format!("Packages/{filename}"), 0));
                }
                Inspected::Chart(info) => {
                    let entry =
                        cairn_helm::index_entry(&info, &filename, time::OffsetDateTime::UNIX_EPOCH);
                    println!("{entry:#}");
                }
            }
        }
        Command::Verify {
            repo,
            bucket,
            keyring,
            format,
        } => {
            let ok = verify(&repo, bucket, &keyring, format.as_deref()).await?;
            if !ok {
                std::process::exit(1);
            }
        }
        Command::Login {
            api,
            user,
            expires_in_days,
        } => remote_outcome(remote::login(&api, user.as_deref(), expires_in_days).await),
        Command::Whoami => remote_outcome(remote::whoami().await),
        Command::Push {
            files,
            repo,
            product,
            wait,
            timeout,
            presign_above,
        } => remote_outcome(
            remote::push(remote::Push {
                files,
                repo,
                product,
                presign_above,
                wait: wait.then(|| std::time::Duration::from_secs(timeout)),
            })
            .await,
        ),
        Command::Token(TokenCommand::Create {
            scopes,
            description,
            expires_in_days,
        }) => remote_outcome(remote::token_create(&scopes, &description, expires_in_days).await),
        Command::Token(TokenCommand::List) => remote_outcome(remote::token_list().await),
        Command::Repo(RepoCommand::Create {
            path,
            format,
            description,
            private,
            labels,
            owners,
        }) => remote_outcome(
            repos::create(repos::Create {
                path,
                format,
                description,
                private,
                labels,
                owners,
            })
            .await,
        ),
        Command::Repo(RepoCommand::List { selector }) => {
            remote_outcome(repos::list(selector.as_deref()).await)
        }
        Command::Repo(RepoCommand::Show { path }) => remote_outcome(repos::show(&path).await),
        Command::Repo(RepoCommand::Delete { path, force }) => {
            remote_outcome(repos::delete(&path, force).await)
        }
        Command::Token(TokenCommand::Revoke { id }) => {
            remote_outcome(remote::token_revoke(&id).await)
        }
        Command::Openapi => {
            println!("{}", openapi()?);
        }
        Command::Apply { file, project } => {
            remote_outcome(builds::apply(&file, project.as_deref()).await)
        }
        Command::Build(BuildCommand::Start {
            project,
            parameters,
            wait,
            log,
        }) => remote_outcome(builds::start(&project, &parameters, wait, log).await),
        Command::Build(BuildCommand::Show { id }) => remote_outcome(builds::show(&id).await),
        Command::Build(BuildCommand::List { project }) => {
            remote_outcome(builds::list(&project).await)
        }
        Command::Build(BuildCommand::Log { id, step, follow }) => {
            remote_outcome(builds::log(&id, step, follow).await)
        }
        Command::Build(BuildCommand::Cancel { id }) => remote_outcome(builds::cancel(&id).await),
        Command::Artifact(command) => remote_outcome(match command {
            ArtifactCommand::Put {
                project,
                name,
                file,
            } => artifacts::put(&project, &name, &file).await,
            ArtifactCommand::Get {
                project,
                name,
                output,
            } => artifacts::get(&project, &name, output.as_deref()).await,
            ArtifactCommand::List { project } => artifacts::list(&project).await,
            ArtifactCommand::Delete { project, name } => artifacts::delete(&project, &name).await,
        }),
        Command::Worker {
            name,
            labels,
            workdir,
            once,
        } => {
            let name = name
                .or_else(|| std::env::var("HOSTNAME").ok())
                .or_else(|| {
                    std::fs::read_to_string("/etc/hostname")
                        .ok()
                        .map(|h| h.trim().to_string())
                })
                .unwrap_or_else(|| "worker".into());
            remote_outcome(
                worker::run(worker::Worker {
                    name,
                    labels,
                    workdir,
                    once,
                })
                .await,
            )
        }
        Command::Fsck(args) => {
            if !fsck(args).await? {
                std::process::exit(1);
            }
        }
        Command::User(UserCommand::Hash) => {
            println!("{}", hash_password(&read_password()?));
        }
        Command::User(UserCommand::Add {
            name,
            table,
            hash,
            role,
            selectors,
        }) => {
            let role = Role::parse(&role).map_err(anyhow::Error::msg)?;
            for selector in &selectors {
                cairn_core::labels::Selector::parse_granting(selector)
                    .map_err(|e| anyhow::anyhow!("--selector: {e}"))?;
            }
            if name.is_empty() || name.contains(':') || name.len() > MAX_USER_NAME {
                bail!("a user name must be 1 to {MAX_USER_NAME} bytes and must not contain ':'");
            }
            let password_hash = match hash {
                Some(h) => h,
                None => {
                    let password = read_password()?;
                    if password.starts_with(cairn_core::tokens::TOKEN_PREFIX) {
                        bail!(
                            "a password must not start with {}: that is how tokens are told apart",
                            cairn_core::tokens::TOKEN_PREFIX
                        );
                    }
                    hash_password(&password)
                }
            };
            let clients = Clients::load().await;
            DynamoCatalog::new(clients.dynamodb, table)
                .put_user(&UserRecord {
                    name: name.clone(),
                    password_hash,
                    role,
                    // Writing the account again revokes the tokens it had.
                    tokens_after: time::OffsetDateTime::now_utc().unix_timestamp(),
                    selectors,
                })
                .await?;
            eprintln!("user {name} saved ({})", role.as_str());
        }
    }
    Ok(())
}

/// Ends the process with the failure's exit code (docs/cli.md).
fn remote_outcome(outcome: Result<(), remote::Failure>) {
    if let Err(failure) = outcome {
        eprintln!("cairn: {}", failure.message);
        std::process::exit(failure.code);
    }
}

/// One document for the API Lambdas: each endpoint group describes its own
/// routes where it routes them.
fn openapi() -> Result<String> {
    let mut doc = cairn_http::openapi::base(
        "Cairn",
        "A serverless software repository: APT, YUM and Helm repositories, immutable \
         source archives, an event log and webhooks. Errors are RFC 9457 problems.",
    );
    for group in [
        repo_api::openapi(),
        archive_api::openapi(),
        events_api::openapi(),
        webhooks_api::openapi(),
        tokens_api::openapi(),
        repositories_api::openapi(),
        files_api::openapi(),
        builds_api::openapi(),
    ] {
        doc.merge(group);
    }
    Ok(doc.to_pretty_json()?)
}
