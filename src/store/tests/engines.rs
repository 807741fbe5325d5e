//! Fresh stores of each engine for the behaviour tests: SQLite in a temp dir, and
//! PostgreSQL in a database of its own ([`TestDatabase`]), dropped after the test.

use super::super::Store;
use crate::store::testing::TestDatabase;

/// A store and what keeps it alive (dropped after it).
pub struct TestStore {
    pub store: Store,
    pub engine: &'static str,
    _dir: Option<tempfile::TempDir>,
    _database: Option<TestDatabase>,
}

/// A fresh store of each engine that can run here: SQLite always, PostgreSQL when a
/// server answers.
pub async fn engines() -> Vec<TestStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut stores = vec![TestStore {
        store: Store::open(dir.path()).await.expect("store opens"),
        engine: "sqlite",
        _dir: Some(dir),
        _database: None,
    }];
    if let Some(database) = TestDatabase::create().await {
        stores.push(TestStore {
            store: Store::connect(&database.url, None, "test")
                .await
                .expect("the PostgreSQL store opens"),
            engine: "postgres",
            _dir: None,
            _database: Some(database),
        });
    }
    stores
}

/// [`engines`] one by one, each named on stderr as its turn comes, so that a failure
/// says which engine it was on.
pub async fn each_engine() -> impl Iterator<Item = TestStore> {
    let stores = engines().await;
    stores
        .into_iter()
        .inspect(|each| eprintln!("engine: {}", each.engine))
}

/// A test store is used as the store it holds.
impl std::ops::Deref for TestStore {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.store
    }
}

impl TestStore {
    /// An outbox row's state, read past the store's interface.
    pub async fn state_of(&self, id: i64) -> String {
        let mut states = self
            .column("SELECT state FROM outbox WHERE id = $1", id)
            .await;
        states.pop().expect("row exists")
    }

    /// Puts the only outbox row in `state`, claimed until 60 s after the epoch; its id.
    pub async fn force_state(&self, state: &str) -> i64 {
        let ids = self
            .column(
                "UPDATE outbox SET state = $1, lease_until = 60 RETURNING id",
                state,
            )
            .await;
        assert_eq!(ids.len(), 1, "one row in the outbox");
        ids[0]
    }

    /// Empties the outbox.
    pub async fn clear_outbox(&self) {
        self.column::<_, i64>("DELETE FROM outbox WHERE state <> $1 RETURNING id", "")
            .await;
    }

    /// Runs `sql` with one parameter past the store's interface; the first column of
    /// the rows it returns.
    async fn column<P, T>(&self, sql: &str, param: P) -> Vec<T>
    where
        P: rusqlite::ToSql + tokio_postgres::types::ToSql + Sync,
        T: rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a>,
    {
        match (&self._dir, &self._database) {
            (Some(dir), _) => {
                let conn = super::raw(dir.path());
                let mut stmt = conn.prepare(&sql.replace('$', "?")).expect("prepare");
                stmt.query_map([param], |r| r.get(0))
                    .expect("run")
                    .collect::<Result<_, _>>()
                    .expect("rows")
            }
            (_, Some(database)) => database
                .client()
                .await
                .query(sql, &[&param])
                .await
                .expect("run")
                .iter()
                .map(|r| r.get(0))
                .collect(),
            (None, None) => unreachable!("a store is somewhere"),
        }
    }
}
