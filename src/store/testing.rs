//! A PostgreSQL database made for one test and dropped after it: for the store's own
//! tests and for the integration tests that run the daemon on PostgreSQL.
//!
//! The server is at `NEWSHOUND_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When none answers, [`TestDatabase::create`]
//! says so once and gives `None`, so `cargo test` passes on a machine with only Rust;
//! with `NEWSHOUND_REQUIRE_POSTGRES=1` (as `.ci/run` sets) a missing server fails.

use std::sync::atomic::{AtomicUsize, Ordering};

const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database made for one test, dropped with it.
pub struct TestDatabase {
    server: String,
    name: String,
    /// The database's URL, for `[store] url`.
    pub url: String,
}

impl TestDatabase {
    /// A new, empty database on the test server; `None` when no server answers (and
    /// none is required).
    pub async fn create() -> Option<TestDatabase> {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let server = std::env::var("NEWSHOUND_TEST_POSTGRES").unwrap_or(DEFAULT_SERVER.into());
        let admin = match tokio_postgres::connect(&server, tokio_postgres::NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                client
            }
            Err(e) if std::env::var_os("NEWSHOUND_REQUIRE_POSTGRES").is_none() => {
                // Once, and past the test harness's capture, so that it is seen.
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| {
                    use std::io::Write as _;
                    let _ = writeln!(
                        std::io::stderr(),
                        "skipped: no PostgreSQL at {server} ({e}); its tests ran without it"
                    );
                });
                return None;
            }
            Err(e) => {
                panic!("no PostgreSQL at {server} and NEWSHOUND_REQUIRE_POSTGRES is set: {e}")
            }
        };
        let name = format!(
            "newshound_test_{}_{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        for sql in [
            format!("DROP DATABASE IF EXISTS {name}"),
            format!("CREATE DATABASE {name}"),
        ] {
            admin
                .batch_execute(&sql)
                .await
                .expect("create a test database");
        }
        let mut url = url::Url::parse(&server).expect("a URL");
        url.set_path(&name);
        Some(TestDatabase {
            server,
            url: url.to_string(),
            name,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Dropped outside any runtime the test may be in the middle of.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
                    .await
                    .expect("reconnect to drop the test database");
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

impl TestDatabase {
    /// A connection of the test's own to the database.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(connection);
        client
    }

    /// Makes the database refuse connections (and ends the ones open), or take them
    /// again: an outage of the store as the daemon sees it.
    pub async fn set_reachable(&self, reachable: bool) {
        let (admin, connection) = tokio_postgres::connect(&self.server, tokio_postgres::NoTls)
            .await
            .expect("connect to the test server");
        tokio::spawn(connection);
        let name = &self.name;
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {reachable}"
            ))
            .await
            .expect("allow or refuse connections");
        if !reachable {
            admin
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE datname = $1 AND pid <> pg_backend_pid()",
                    &[name],
                )
                .await
                .expect("end the open connections");
        }
    }
}
