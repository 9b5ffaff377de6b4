//! Resident memory of repeated password checks (finding 0 of the integrity issue).
//!
//! Runs `cairn_core::auth::verify_password` N times (default 40) against an argon2id
//! hash made with the crate's default parameters (m=19456 KiB, t=2, p=1), the way a
//! warm `repo-api` process does: one check per "request", each on a task of a tokio
//! runtime (multi-thread by default, like the Lambda's `#[tokio::main]`), and prints
//! `VmRSS`/`VmHWM` from `/proc/self/status` before, during and after.
//!
//! ```sh
//! cargo run --release -p cairn-core --example auth_rss                 # 40x, multi-thread
//! cargo run --release -p cairn-core --example auth_rss -- 40 current   # one thread
//! MALLOC_MMAP_THRESHOLD_=131072 cargo run --release -p cairn-core --example auth_rss
//! ```
//!
//! Arguments: `[iterations] [multi|current|blocking] [worker threads]`; `blocking` runs each
//! check in `spawn_blocking` (a fresh or reused blocking-pool thread).

use cairn_core::auth::verify_password;

/// argon2id, argon2 0.5 defaults, password "correct horse battery staple".
const STORED: &str = "$argon2id$v=19$m=19456,t=2,p=1$J/xfGanGpYmzufSVb7kG6g$mIuXwGLzaEm5+k3EgF5a3Bgks6IpyVHeAqVpmtWdWbo";
const PASSWORD: &str = "correct horse battery staple";

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn report(label: &str) {
    let rss = status_kib("VmRSS:");
    let hwm = status_kib("VmHWM:");
    println!(
        "{label:<28} VmRSS {:>8.1} MiB   VmHWM {:>8.1} MiB",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let iterations: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(40);
    let mode = args.next().unwrap_or_else(|| "multi".to_string());
    let workers: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let runtime = match mode.as_str() {
        "current" => tokio::runtime::Builder::new_current_thread().build(),
        _ => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .build(),
    }
    .expect("tokio runtime");
    println!(
        "verify_password x{iterations}, runtime: {mode}{}, MALLOC_* env: {}",
        if mode == "current" {
            String::new()
        } else {
            format!(" ({workers} workers)")
        },
        std::env::vars()
            .filter(|(k, _)| k.starts_with("MALLOC_"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    report("before");
    runtime.block_on(async {
        for i in 1..=iterations {
            // Alternate right and wrong passwords, as a mix of logins would.
            let password = if i % 2 == 0 {
                PASSWORD
            } else {
                "wrong password"
            };
            let ok = if mode == "blocking" {
                tokio::task::spawn_blocking(move || verify_password(STORED, password))
                    .await
                    .expect("task")
            } else {
                tokio::spawn(async move { verify_password(STORED, password) })
                    .await
                    .expect("task")
            };
            assert_eq!(ok, password == PASSWORD, "verification result");
            if i == 1 || i % 10 == 0 {
                report(&format!("after {i}"));
            }
        }
    });
    report("after (runtime still up)");
    drop(runtime);
    report("after (runtime dropped)");
}
