//! `backup` and `restore`: a copy of the SQLite state taken while the pipeline polls
//! and delivers, put back in place with the daemon stopped; refused while one runs,
//! and for a file that is not a whole state.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Utc;
use newshound::daemon::Pipeline;
use support::{TestConfig, maildir_messages, serve_feed};
use wiremock::MockServer;

fn newshound(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_newshound"))
        .args(args)
        .env_remove("NEWSHOUND_CONFIG")
        .env_remove("RUST_LOG")
        .envs(support::test_env())
        .output()
        .expect("newshound runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An RSS document with items `first..last`, each matching the rule.
fn rss(first: usize, last: usize) -> Vec<u8> {
    let items: String = (first..last)
        .map(|n| {
            format!(
                "<item><guid>item-{n}</guid><title>Geneva talks, part {n}</title>\
                 <link>https://news.example/{n}</link></item>"
            )
        })
        .collect();
    format!("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title>{items}</channel></rss>")
        .into_bytes()
}

/// Serves items `0..last` at `/rss` under an ETag of their own.
async fn serve(server: &MockServer, last: usize) {
    server.reset().await;
    let etag = format!("\"{last}\"");
    serve_feed(server, "/rss", rss(0, last), &etag, "application/rss+xml").await;
}

fn config(server: &MockServer) -> TestConfig {
    TestConfig::write(
        "first_poll = \"alert\"",
        &format!(
            "[[feeds]]\nname = \"wire\"\nurl = \"{}/rss\"\n\n\
             [channels.inbox]\ntype = \"maildir\"\npath = \"inbox\"\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Geneva\"]\nchannels = [\"inbox\"]\n",
            server.uri()
        ),
    )
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Runs `newshound` on a blocking thread, so that the pipeline goes on meanwhile.
async fn newshound_aside(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        newshound(&args)
    })
    .await
    .expect("newshound ran")
}

/// The counts `restore` printed: seen items, alerts, alerts to deliver.
fn restored(stdout: &str) -> (usize, usize, usize) {
    let numbers: Vec<usize> = stdout
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .take(3)
        .collect();
    (numbers[0], numbers[1], numbers[2])
}

#[tokio::test]
async fn a_backup_taken_while_polling_and_delivering_restores_without_losing_or_repeating() {
    support::init();
    let server = Arc::new(MockServer::start().await);
    serve(&server, 5).await;
    let config = config(&server);
    let backup = config.dir.path().join("backup.db");
    let pipeline = Arc::new(Pipeline::new(config.load()).await.expect("pipeline"));
    let feed = pipeline.config().feeds[0].clone();
    pipeline.poll(&feed).await.expect("polled");

    // Each round the feed brings a new item, which is polled and delivered, for as
    // long as the backup runs.
    let done = Arc::new(AtomicBool::new(false));
    let busy = {
        let (pipeline, done, server) = (
            Arc::clone(&pipeline),
            Arc::clone(&done),
            Arc::clone(&server),
        );
        let feed = feed.clone();
        tokio::spawn(async move {
            let mut items = 5;
            while !done.load(Ordering::SeqCst) || items == 5 {
                items += 1;
                serve(&server, items).await;
                pipeline.poll(&feed).await.expect("polled");
                pipeline.dispatch_due(Utc::now()).await.expect("dispatched");
            }
            items
        })
    };
    let out = newshound_aside(vec![
        "backup".into(),
        arg(&backup).into(),
        "--config".into(),
        arg(&config.path).into(),
    ])
    .await;
    done.store(true, Ordering::SeqCst);
    let items = busy.await.expect("polling went on");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("backed up "),
        "{}",
        text(&out.stdout)
    );
    drop(pipeline);
    let inbox = config.dir.path().join("inbox");
    assert_eq!(
        maildir_messages(&inbox).len(),
        items,
        "every item delivered"
    );

    let out = newshound(&["restore", arg(&backup), "--config", arg(&config.path)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (seen, alerts, pending) = restored(&text(&out.stdout));
    assert_eq!(seen, alerts, "{}", text(&out.stdout));

    // What the backup had seen is not alerted again; what came after it is; what it
    // held undelivered is delivered (into the same Maildir file: its name comes from
    // the message id).
    let pipeline = Pipeline::new(config.load()).await.expect("pipeline again");
    pipeline.poll(&feed).await.expect("polled");
    pipeline.dispatch_due(Utc::now()).await.expect("dispatched");
    let counts = pipeline.store().outbox_counts().await.expect("counts");
    assert_eq!(counts.pending, 0);
    assert_eq!(counts.sent as usize, alerts + (items - seen));
    assert!(pending <= alerts);
    assert_eq!(
        maildir_messages(&inbox).len(),
        items,
        "none lost, none twice"
    );
}

/// A pipeline whose feed of five items was polled once: five alerts queued, not yet
/// delivered. The server serves for as long as it is kept.
async fn five_queued() -> (MockServer, TestConfig, Pipeline) {
    support::init();
    let server = MockServer::start().await;
    serve(&server, 5).await;
    let config = config(&server);
    let pipeline = Pipeline::new(config.load()).await.expect("pipeline");
    let feed = pipeline.config().feeds[0].clone();
    pipeline.poll(&feed).await.expect("polled");
    (server, config, pipeline)
}

#[tokio::test]
async fn a_restore_is_refused_while_a_daemon_holds_the_state_and_then_delivers_what_it_held() {
    let (_server, config, pipeline) = five_queued().await;
    let feed = pipeline.config().feeds[0].clone();
    let backup = config.dir.path().join("backup.db");
    // The backup holds the five alerts pending.
    let out = newshound(&["backup", arg(&backup), "--config", arg(&config.path)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    pipeline.dispatch_due(Utc::now()).await.expect("dispatched");
    let inbox = config.dir.path().join("inbox");
    assert_eq!(maildir_messages(&inbox).len(), 5);

    let out = newshound(&["backup", arg(&backup), "--config", arg(&config.path)]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("backup.db: already exists; name a new file for the backup"),
        "{}",
        text(&out.stderr)
    );
    // A restore while the pipeline holds the state is refused, and changes nothing.
    let out = newshound(&["restore", arg(&backup), "--config", arg(&config.path)]);
    assert!(!out.status.success());
    let said = text(&out.stderr);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(
        said.contains("cannot restore while a daemon runs on the state")
            && said.contains("stop it first"),
        "{said}"
    );
    drop(pipeline);

    // The restored file takes the owner and permissions of the state it replaces.
    use std::os::unix::fs::PermissionsExt;
    let db = config.state_dir().join("newshound.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let out = newshound(&["restore", arg(&backup), "--config", arg(&config.path)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mode = std::fs::metadata(&db)
        .expect("restored")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    let said = text(&out.stdout);
    assert_eq!(restored(&said), (5, 5, 5), "{said}");
    assert!(said.contains("the state it replaced is kept as "), "{said}");
    let kept: Vec<String> = std::fs::read_dir(config.state_dir())
        .expect("state dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("newshound.db.replaced-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");

    // The restored state delivers the five it held (again: the backup is older than
    // their delivery), and alerts nothing it had seen.
    let out = newshound(&["status", "--config", arg(&config.path)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pipeline = Pipeline::new(config.load()).await.expect("pipeline again");
    assert_eq!(
        pipeline
            .store()
            .outbox_counts()
            .await
            .expect("counts")
            .pending,
        5
    );
    pipeline.poll(&feed).await.expect("polled");
    pipeline.dispatch_due(Utc::now()).await.expect("dispatched");
    let counts = pipeline.store().outbox_counts().await.expect("counts");
    assert_eq!(
        (counts.sent, counts.pending),
        (5, 0),
        "nothing new, the five sent"
    );
    assert_eq!(
        maildir_messages(&inbox).len(),
        5,
        "each into its own file again"
    );
}

#[tokio::test]
async fn a_truncated_or_foreign_file_is_refused_with_one_line_and_the_state_is_kept() {
    let (_server, config, pipeline) = five_queued().await;
    drop(pipeline);
    let backup = config.dir.path().join("backup.db");
    let out = newshound(&["backup", arg(&backup), "--config", arg(&config.path)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let whole = std::fs::read(&backup).expect("backup");
    let db = config.state_dir().join("newshound.db");
    let state = std::fs::read(&db).expect("state");

    let bad = config.dir.path().join("bad.db");
    let foreign = {
        let conn = rusqlite::Connection::open(&bad).expect("sqlite");
        conn.execute_batch("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
            .expect("a table");
        drop(conn);
        std::fs::read(&bad).expect("foreign database")
    };
    let cases = [
        (
            "database disk image is malformed",
            whole[..whole.len() / 2].to_vec(),
        ),
        ("it is an SQLite database of something else", foreign),
        ("file is not a database", b"[daemon]\n".to_vec()),
        ("it is empty", Vec::new()),
    ];
    for (expected, bytes) in cases {
        std::fs::write(&bad, bytes).expect("write");
        let out = newshound(&["restore", arg(&bad), "--config", arg(&config.path)]);
        assert!(!out.status.success(), "{expected}");
        let said = text(&out.stderr);
        assert_eq!(said.lines().count(), 1, "{said}");
        assert!(
            said.starts_with("newshound: cannot restore: ")
                && said.contains("bad.db: not a newshound state: ")
                && said.contains(expected),
            "expected {expected:?}: {said}"
        );
        assert_eq!(
            std::fs::read(&db).expect("state"),
            state,
            "the state is kept"
        );
    }
    let left: Vec<String> = std::fs::read_dir(config.state_dir())
        .expect("state dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("replaced") || name.contains("restoring"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn with_a_postgresql_store_backup_prints_the_pg_dump_command_without_the_password() {
    let config = TestConfig::write(
        "",
        "[store]\nurl = \"postgres://newshound:s3cret@127.0.0.1:5432/alerts\"\n",
    );
    let out = newshound(&["backup", "nightly.dump", "--config", arg(&config.path)]);
    assert!(!out.status.success(), "nothing was written");
    assert_eq!(
        text(&out.stdout),
        "pg_dump --format=custom --file=nightly.dump 'postgres://newshound@127.0.0.1:5432/alerts'\n"
    );
    assert!(!text(&out.stdout).contains("s3cret") && !text(&out.stderr).contains("s3cret"));
    let out = newshound(&["restore", "nightly.dump", "--config", arg(&config.path)]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(
            "pg_restore --clean --if-exists --dbname='postgres://newshound@127.0.0.1:5432/alerts' nightly.dump"
        ),
        "{}",
        text(&out.stderr)
    );
    assert!(!config.dir.path().join("nightly.dump").exists());
}
