//! `cairn`: the Cairn command-line tool: manages the accounts that may upload
//! (`cairn user add`), prints password hashes, and shows the metadata Cairn would
//! publish for a package (`cairn inspect`: a `Packages` stanza for a `.deb`, the
//! `primary.xml` element for an `.rpm`, the `index.yaml` entry for a chart).

use anyhow::{Context, Result, bail};
use cairn_aws::{Clients, DynamoCatalog};
use cairn_core::auth::{UserRecord, hash_password};
use cairn_core::ingest::{Inspected, inspect_package};
use cairn_core::ports::UserDirectory;
use cairn_core::repo::RepoFormat;
use clap::{Parser, Subcommand};
use std::io::Read;

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
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create or replace an account; the password is read from standard input.
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
    },
    /// Print the argon2id hash of the password read from standard input.
    Hash,
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
        Command::User(UserCommand::Hash) => {
            println!("{}", hash_password(&read_password()?));
        }
        Command::User(UserCommand::Add { name, table, hash }) => {
            if name.is_empty() || name.contains(':') {
                bail!("a user name must be non-empty and must not contain ':'");
            }
            let password_hash = match hash {
                Some(h) => h,
                None => hash_password(&read_password()?),
            };
            let clients = Clients::load().await;
            DynamoCatalog::new(clients.dynamodb, table)
                .put_user(&UserRecord {
                    name: name.clone(),
                    password_hash,
                })
                .await?;
            eprintln!("user {name} saved");
        }
    }
    Ok(())
}
