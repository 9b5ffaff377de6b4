//! Single-table key layout. Every key the service reads or writes is built here;
//! `docs/data-model.md` lists the access patterns.

use cairn_core::RepoPath;

/// Partition key attribute.
pub const PK: &str = "pk";
/// Sort key attribute.
pub const SK: &str = "sk";
/// Time-to-live attribute (seconds since the epoch), enabled on the table.
pub const TTL: &str = "expires_at";

/// Prefix of package sort keys inside a suite's partition.
pub const PACKAGE_PREFIX: &str = "PKG#";
/// Prefix of pool-object claim sort keys inside a suite's partition.
pub const FILE_PREFIX: &str = "FILE#";
/// Prefix of change-log sort keys inside a suite's partition.
pub const CHANGE_PREFIX: &str = "CHG#";
/// Prefix of superseded-object sort keys inside a suite's partition.
pub const SUPERSEDED_PREFIX: &str = "GONE#";
/// Sort key of a suite's publishing state.
pub const STATE_SK: &str = "STATE";
/// Sort key of a user item.
pub const USER_SK: &str = "USER";
/// Sort key of an upload ticket.
pub const UPLOAD_SK: &str = "UPLOAD";

/// Partition of the overall event log; also holds the log's counter.
pub const EVENTS_PK: &str = "EVENTS";
/// Sort key of the event log's counter (the last position used).
pub const EVENTS_HEAD_SK: &str = "HEAD";
/// Prefix of event sort keys, in the overall log and in a subject's log.
pub const EVENT_PREFIX: &str = "EVT#";

/// Partition of every webhook subscription (the dispatcher reads them all).
pub const WEBHOOKS_PK: &str = "WEBHOOKS";
/// Prefix of a webhook subscription's sort key.
pub const WEBHOOK_PREFIX: &str = "HOOK#";

/// Partition of one subject's event log (`repository:release/3.0/el/8`, ...).
pub fn subject_pk(subject: &str) -> String {
    format!("SUBJECT#{subject}")
}

/// Sort key of the event at log position `seq`; zero-padded so keys sort by position.
pub fn event_sk(seq: u64) -> String {
    format!("{EVENT_PREFIX}{seq:020}")
}

/// Partition of one suite: its packages and its state.
pub fn repo_pk(repo: &RepoPath) -> String {
    format!("REPO#{repo}")
}

/// Sort key of a superseded metadata object (its key in the repository bucket).
pub fn superseded_sk(key: &str) -> String {
    format!("{SUPERSEDED_PREFIX}{key}")
}

/// Sort key of one package file.
pub fn package_sk(filename: &str) -> String {
    format!("{PACKAGE_PREFIX}{filename}")
}

/// Sort key of the claim on one pool object (its key in the repository bucket).
pub fn file_sk(key: &str) -> String {
    format!("{FILE_PREFIX}{key}")
}

/// Sort key of one change-log entry; zero-padded so keys sort by sequence.
pub fn change_sk(seq: u64) -> String {
    format!("{CHANGE_PREFIX}{seq:020}")
}

/// Partition of one user.
pub fn user_pk(name: &str) -> String {
    format!("USER#{name}")
}

/// Partition of every created repository.
pub const REPOSITORIES_PK: &str = "REPOSITORIES";
/// Prefix of a created repository's sort key (then its path).
pub const REPOSITORY_PREFIX: &str = "REPO#";

/// Sort key of a token's lookup item, in the token's own partition.
pub const TOKEN_SK: &str = "TOKEN";
/// Prefix of the sort keys of an account's tokens, in the account's partition.
pub const TOKEN_PREFIX: &str = "TOKEN#";

/// Partition of one token, found by the id its text carries.
pub fn token_pk(id: &str) -> String {
    format!("TOKEN#{id}")
}

/// Partition of one presigned upload.
pub fn upload_pk(id: &str) -> String {
    format!("UPLOAD#{id}")
}

/// Prefix of archived-tree sort keys inside a repository's partition.
pub const ARCHIVE_TREE_PREFIX: &str = "TREE#";
/// Prefix of origin-object -> tree sort keys.
pub const ARCHIVE_ORIGIN_PREFIX: &str = "ORIGIN#";
/// Prefix of published-ref sort keys.
pub const ARCHIVE_REF_PREFIX: &str = "REF#";
/// Prefix of pack sort keys.
pub const ARCHIVE_PACK_PREFIX: &str = "PACK#";
/// Sort key of an archive name's claim (the storage of the archive repository that
/// claimed it). `!` sorts before every other sort key of the partition, so the
/// name's catalog items are the keys after it.
pub const ARCHIVE_CLAIM_SK: &str = "!CLAIM";
/// Sort key of an operation item.
pub const OPERATION_SK: &str = "OP";
/// Prefix of callback-attempt sort keys inside an operation's partition.
pub const ATTEMPT_PREFIX: &str = "ATTEMPT#";

/// Partition of one archive repository: its trees, refs, packs and origin mappings.
pub fn archive_pk(name: &str) -> String {
    format!("ARCHIVE#{name}")
}

/// Partition of one operation: the operation and its callback attempts.
pub fn operation_pk(id: &str) -> String {
    format!("OP#{id}")
}

/// Sort key of one callback attempt; zero-padded so keys sort by attempt.
pub fn attempt_sk(attempt: u32) -> String {
    format!("{ATTEMPT_PREFIX}{attempt:04}")
}

/// Partition of an indexed repository (`repo`: its index key, `<path>#<storage id>`):
/// its state, last run and versions.
pub fn index_pk(repo: &str) -> String {
    format!("INDEX#{repo}")
}

/// Sort key of the last index run.
pub const INDEX_RUN_SK: &str = "RUN";

/// Sort-key prefix of indexed chart versions: `VER#<app>#<version>`.
pub const INDEX_VERSION_PREFIX: &str = "VER#";

/// Partition of every app (one item per chart and repository).
pub const APPS_PK: &str = "APPS";

/// Sort-key prefix of apps: `APP#<app>#<repository>#<storage id>`.
pub const APP_PREFIX: &str = "APP#";

/// Partition of every build project (one item each, its slots with it).
pub const PROJECTS_PK: &str = "PROJECTS";
/// Prefix of a project's sort key (then its name).
pub const PROJECT_PREFIX: &str = "PROJECT#";
/// Sort key of a build's own item.
pub const BUILD_SK: &str = "BUILD";
/// Prefix of the sort keys of a project's build listing (then creation time and id).
pub const BUILD_PREFIX: &str = "BUILD#";
/// Partition of the worker queue: one item per job waiting for a worker.
pub const JOBQ_PK: &str = "JOBQ";

/// Partition of one build.
pub fn build_pk(id: &str) -> String {
    format!("BUILD#{id}")
}

/// Partition of one project's build listing.
pub fn project_builds_pk(project: &str) -> String {
    format!("PROJECT#{project}")
}

/// Sort key of a build in its project's listing; zero-padded so keys sort by time.
pub fn project_build_sk(created_ms: i64, id: &str) -> String {
    format!("{BUILD_PREFIX}{created_ms:015}#{id}")
}

/// Sort key of a job in the worker queue; zero-padded so the oldest come first.
pub fn job_sk(queued_ms: i64, id: &str) -> String {
    format!("{queued_ms:015}#{id}")
}

/// Partition of the projects listening to one event subject (`archive:<name>`);
/// one item per project, sort key [`PROJECT_PREFIX`] and its name.
pub fn listeners_pk(subject: &str) -> String {
    format!("LISTEN#{subject}")
}

/// Partition of the schedule entries: one item per project schedule, sorted by
/// when it is next due.
pub const SCHEDULES_PK: &str = "SCHEDULES";

/// Sort key of a schedule entry: due time (Unix seconds, zero-padded so keys sort by
/// time), project, expression.
pub fn schedule_sk(at: i64, project: &str, cron: &str) -> String {
    format!("{at:012}#{project}#{cron}")
}

/// Key of one chunk of a build step's log in the build bucket.
pub fn log_key(build: &str, step: usize, offset: u64) -> String {
    format!("logs/{build}/{step:03}/{offset:015}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_names_claim_sorts_before_its_items() {
        // `archive_in_use` reads the items after the claim: each must sort after it.
        for prefix in [
            ARCHIVE_TREE_PREFIX,
            ARCHIVE_ORIGIN_PREFIX,
            ARCHIVE_REF_PREFIX,
            ARCHIVE_PACK_PREFIX,
        ] {
            assert!(prefix > ARCHIVE_CLAIM_SK, "{prefix}");
        }
    }
}
