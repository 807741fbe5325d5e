//! The PostgreSQL engine, for several newshound instances sharing one database: a
//! small pool of connections (deadpool-postgres) with a cache of prepared statements
//! each, one transaction per write except for what polls write, which `group` commits
//! together, with PostgreSQL's own durability (a commit that returned is on disk). Row locks with
//! `SKIP LOCKED` let instances claim outbox rows without waiting on each other, and the
//! unique keys of `seen_item` and `outbox` mean two instances can never queue the
//! same item twice.
//!
//! The schema is migrated under an advisory lock, so instances starting together do
//! not race. Its SQL is in `{feeds,items,outbox,notes}.rs` (what SQLite reads too in
//! the store's `sql`), one function per operation of the store, each taking the
//! [`Engine`]; `engine` wires them to the store's contract.

mod engine;
pub mod feeds;
mod group;
pub mod items;
pub mod load;
pub mod notes;
pub mod outbox;
pub mod shared;

use std::sync::Arc;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::Row;
use tokio_postgres::config::SslMode;
use tokio_postgres::types::ToSql;

use super::StoreError;

/// Each entry upgrades the schema by one version; `newshound_schema` says how many ran.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("migration_2.sql"),
    include_str!("migration_3.sql"),
    include_str!("migration_4.sql"),
    include_str!("migration_5.sql"),
    include_str!("migration_6.sql"),
    include_str!("migration_7.sql"),
    include_str!("migration_8.sql"),
    include_str!("migration_9.sql"),
    include_str!("migration_10.sql"),
];
/// The advisory lock held while the schema is migrated ("newshound" in ASCII, cut).
const MIGRATION_LOCK: i64 = 0x6e65_7773_686f_756e;
/// Connections in the pool: polls and deliveries share them.
const CONNECTIONS: usize = 16;

/// A statement's parameters, as tokio-postgres takes them.
pub type Params<'a> = [&'a (dyn ToSql + Sync)];

/// The PostgreSQL engine: a pool of connections to one database.
pub struct Engine {
    pool: Pool,
    /// Where it is, without the password, for errors.
    pub place: String,
    /// This instance's name, recorded with what it claims.
    pub instance: String,
    /// Whether it has said it is alive since it connected: its first heartbeat is
    /// its start.
    pub joined: std::sync::atomic::AtomicBool,
    /// What polls write, waiting to be committed together.
    writes: group::Batches<items::Write, Vec<i64>>,
    /// Claims of polls, waiting to be made together.
    claims: group::Batches<shared::Claim, crate::store::PollClaim>,
    /// A test hook: a group commit waits this many microseconds after its writes ran,
    /// before it commits.
    commit_delay: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("place", &self.place)
            .finish()
    }
}

impl Engine {
    /// Connects to the database at `url` (`postgres://user@host:port/db`; TLS when it
    /// says `sslmode=require`), with `password` if the URL holds none, and brings its
    /// schema up to date.
    pub async fn connect(
        url: &str,
        password: Option<&str>,
        instance: &str,
    ) -> Result<Engine, StoreError> {
        let config = settings(url, password)?;
        let place = place(&config);
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match config.get_ssl_mode() {
            SslMode::Require => Manager::from_config(config, tls(), manager_config),
            _ => Manager::from_config(config, tokio_postgres::NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(CONNECTIONS)
            .build()
            .map_err(|e| StoreError::Postgres {
                place: place.clone(),
                cause: e.to_string(),
            })?;
        let engine = Engine {
            pool,
            place,
            instance: instance.to_owned(),
            joined: std::sync::atomic::AtomicBool::new(false),
            writes: group::Batches::default(),
            claims: group::Batches::default(),
            commit_delay: std::sync::atomic::AtomicU64::new(0),
        };
        engine.migrate().await?;
        Ok(engine)
    }

    /// A connection from the pool.
    pub async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::Postgres {
            place: self.place.clone(),
            cause: match e {
                deadpool_postgres::PoolError::Backend(e) => said(&e),
                other => other.to_string(),
            },
        })
    }

    /// An error of a query on this database.
    pub fn error(&self, e: tokio_postgres::Error) -> StoreError {
        StoreError::Postgres {
            place: self.place.clone(),
            cause: said(&e),
        }
    }

    /// Runs one statement on `client` (a connection or a transaction); says how many
    /// rows it changed. Every statement goes through the connection's cache of
    /// prepared statements: parsed and planned once per connection, then one round
    /// trip a use.
    pub async fn run_on(
        &self,
        client: &impl GenericClient,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<u64, StoreError> {
        let statement = self.prepared(client, sql).await?;
        client
            .execute(&statement, params)
            .await
            .map_err(|e| self.error(e))
    }

    /// The rows of one query on `client`.
    pub async fn rows_on(
        &self,
        client: &impl GenericClient,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Vec<Row>, StoreError> {
        let statement = self.prepared(client, sql).await?;
        client
            .query(&statement, params)
            .await
            .map_err(|e| self.error(e))
    }

    /// The row of a query on `client` that returns exactly one.
    pub async fn row_on(
        &self,
        client: &impl GenericClient,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Row, StoreError> {
        let statement = self.prepared(client, sql).await?;
        client
            .query_one(&statement, params)
            .await
            .map_err(|e| self.error(e))
    }

    /// The row of a query on `client` that returns at most one.
    pub async fn maybe_row_on(
        &self,
        client: &impl GenericClient,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Option<Row>, StoreError> {
        let statement = self.prepared(client, sql).await?;
        client
            .query_opt(&statement, params)
            .await
            .map_err(|e| self.error(e))
    }

    async fn prepared(
        &self,
        client: &impl GenericClient,
        sql: &str,
    ) -> Result<tokio_postgres::Statement, StoreError> {
        client.prepare_cached(sql).await.map_err(|e| self.error(e))
    }

    /// Runs one statement on its own; says how many rows it changed.
    pub async fn execute(&self, sql: &str, params: &Params<'_>) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let n = self.run_on(&client, sql, params).await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// The rows of one query, run on its own.
    pub async fn query(&self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        self.rows_on(&client, sql, params).await
    }

    /// The row of a query that returns at most one, run on its own.
    pub async fn query_opt(
        &self,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Option<Row>, StoreError> {
        let client = self.client().await?;
        self.maybe_row_on(&client, sql, params).await
    }

    /// The row of a query that returns exactly one, run on its own.
    pub async fn query_one(&self, sql: &str, params: &Params<'_>) -> Result<Row, StoreError> {
        let client = self.client().await?;
        self.row_on(&client, sql, params).await
    }

    /// Runs the migrations this database has not had, holding the advisory lock.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        self.run_on(&client, "SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let migrated = self.migrate_locked(&mut client).await;
        self.run_on(&client, "SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await?;
        migrated
    }

    async fn migrate_locked(&self, client: &mut Object) -> Result<(), StoreError> {
        let fail = |e| self.error(e);
        client
            .batch_execute("CREATE TABLE IF NOT EXISTS newshound_schema (version INTEGER NOT NULL)")
            .await
            .map_err(fail)?;
        let found: i64 = self
            .row_on(
                &*client,
                "SELECT coalesce(max(version), 0)::BIGINT FROM newshound_schema",
                &[],
            )
            .await?
            .get(0);
        let known = MIGRATIONS.len() as i64;
        if found > known {
            return Err(StoreError::NewerSchema { found, known });
        }
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = client.transaction().await.map_err(fail)?;
            tx.batch_execute(sql).await.map_err(fail)?;
            let version = version as i32 + 1;
            self.run_on(&tx, "DELETE FROM newshound_schema", &[])
                .await?;
            self.run_on(
                &tx,
                "INSERT INTO newshound_schema (version) VALUES ($1)",
                &[&version],
            )
            .await?;
            tx.commit().await.map_err(fail)?;
        }
        Ok(())
    }
}

/// A TLS connector that trusts the usual web authorities.
fn tls() -> tokio_postgres_rustls::MakeRustlsConnect {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .unwrap_or_else(|_| {
            // The provider supports the default versions; keep a config that fails to
            // connect rather than none.
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        });
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

/// `user@host:port/db`, never the password.
/// How long a connection attempt may take, unless the URL says (`connect_timeout`):
/// a database host that drops packets would otherwise hold `status` or a start-up
/// for the system's TCP timeout, minutes.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The connection settings of `url`, with `password` when given and
/// [`CONNECT_TIMEOUT`] unless the URL sets its own.
fn settings(url: &str, password: Option<&str>) -> Result<tokio_postgres::Config, StoreError> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| StoreError::Postgres {
        place: redact(url),
        cause: format!("not a PostgreSQL URL: {e}"),
    })?;
    if let Some(password) = password {
        config.password(password);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    Ok(config)
}

fn place(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or("?"),
        config.get_dbname().unwrap_or("?")
    )
}

/// A database URL without its password, to show.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Err(_) => "(the [store] url)".into(),
    }
}

/// What a PostgreSQL error says, with the server's message (tokio-postgres keeps it
/// in the error's source and says only "db error" itself).
fn said(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_attempt_is_bounded_unless_the_url_says_otherwise() {
        let default = settings("postgres://nh@db.test/nh", Some("pw")).expect("a URL");
        assert_eq!(default.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(default.get_password(), Some(&b"pw"[..]));
        let own = settings("postgres://nh@db.test/nh?connect_timeout=3", None).expect("a URL");
        assert_eq!(
            own.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(3))
        );
        assert!(settings("mysql:/x", None).is_err());
    }
}
