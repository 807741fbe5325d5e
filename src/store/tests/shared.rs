//! Instances sharing a database: polls by turns, heartbeats, takeover of a dead
//! instance's claims.

use super::*;
use crate::store::testing::TestDatabase;

const LEASE_60: std::time::Duration = std::time::Duration::from_secs(60);
const SOURCE: &str = "https://news.test/rss";

async fn claim(store: &Store, when: i64) -> Result<PollClaim, StoreError> {
    store.claim_poll(SOURCE, at(when), LEASE_60).await
}

/// Instances `a` and `b` sharing a fresh database (kept first, so dropped last);
/// `None` without a server.
async fn two_instances() -> Option<(TestDatabase, Store, Store)> {
    let database = TestDatabase::create().await?;
    let a = Store::connect(&database.url, None, "a").await.expect("a");
    let b = Store::connect(&database.url, None, "b").await.expect("b");
    Some((database, a, b))
}

#[tokio::test]
async fn the_embedded_store_has_one_instance_which_may_always_poll() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store opens");
    assert!(!store.is_shared());
    for _ in 0..2 {
        assert_eq!(claim(&store, 100).await.expect("claim"), PollClaim::Granted);
    }
    store.heartbeat("h", at(100)).await.expect("heartbeat");
    assert!(store.instances(at(100)).await.expect("query").is_empty());
}

#[tokio::test]
async fn instances_poll_a_source_by_turns_and_take_over_a_dead_ones_lease() {
    let Some((_database, a, b)) = two_instances().await else {
        return;
    };
    assert!(a.is_shared());

    assert_eq!(claim(&a, 100).await.expect("claim"), PollClaim::Granted);
    assert_eq!(
        claim(&b, 110).await.expect("claim"),
        PollClaim::Later(at(160)),
        "a is polling it"
    );
    a.poll_done(SOURCE, at(700)).await.expect("done");
    assert_eq!(
        claim(&b, 200).await.expect("claim"),
        PollClaim::Later(at(700)),
        "not due before a's schedule"
    );
    assert_eq!(claim(&b, 700).await.expect("claim"), PollClaim::Granted);
    // b dies mid-poll: its lease runs out, and a takes the source over.
    assert_eq!(
        claim(&a, 759).await.expect("claim"),
        PollClaim::Later(at(760))
    );
    assert_eq!(claim(&a, 760).await.expect("claim"), PollClaim::Granted);

    a.heartbeat("config-1", at(800)).await.expect("heartbeat");
    b.heartbeat("config-2", at(790)).await.expect("heartbeat");
    let instances = a.instances(at(800)).await.expect("query");
    let seen: Vec<(&str, i64, u64, &str)> = instances
        .iter()
        .map(|i| {
            (
                i.name.as_str(),
                i.heartbeat.timestamp(),
                i.polling,
                i.config_hash.as_str(),
            )
        })
        .collect();
    assert_eq!(seen, [("a", 800, 1, "config-1"), ("b", 790, 0, "config-2")]);

    // A clean stop leaves the list and frees what the instance polled.
    a.leave().await.expect("leave");
    let names: Vec<String> = b
        .instances(at(801))
        .await
        .expect("query")
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["b"]);
    assert_eq!(claim(&b, 801).await.expect("claim"), PollClaim::Granted);
}

#[tokio::test]
async fn status_shows_which_instance_delivers_a_claimed_alert() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let a = Store::connect(&database.url, None, "a").await.expect("a");
    a.heartbeat("h", at(100)).await.expect("heartbeat");
    queue(&a, &["x", "y"], 100).await;
    assert_eq!(
        a.claim_due(at(100), 1, LEASE_60)
            .await
            .expect("claim")
            .len(),
        1
    );
    let instances = a.instances(at(100)).await.expect("query");
    assert_eq!(instances[0].delivering, 1);
}

async fn reserve(store: &Store, wanted: usize, when: i64) -> (usize, DateTime<Utc>) {
    let reserved = store.reserve_sends("me", 5, wanted, at(when));
    reserved.await.expect("reserve")
}

/// `max_per_minute` holds for all instances together: what one sent counts for the
/// others, and a slot frees up a minute after it was taken.
#[tokio::test]
async fn instances_share_a_channels_rate_window() {
    let Some((_database, a, b)) = two_instances().await else {
        return;
    };
    assert_eq!(reserve(&a, 3, 100).await, (3, at(100)), "none taken yet");
    assert_eq!(
        reserve(&b, 5, 110).await,
        (2, at(160)),
        "a took three of five"
    );
    assert_eq!(reserve(&a, 1, 120).await, (0, at(160)));
    assert_eq!(
        reserve(&b, 5, 160).await,
        (3, at(170)),
        "a's three are a minute old"
    );
}

/// The one value `sql` reads from `database`, past the store.
async fn read_one<T: for<'a> tokio_postgres::types::FromSql<'a>>(
    database: &TestDatabase,
    sql: &str,
) -> T {
    let row = database.client().await.query_one(sql, &[]).await;
    row.expect(sql).get(0)
}

/// Instances starting together migrate the schema once between them (under the
/// advisory lock), and a database from a newer newshound is refused.
#[tokio::test]
async fn instances_starting_together_migrate_once_and_a_newer_schema_is_refused() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let starts = (0..4).map(|i| {
        let url = database.url.clone();
        tokio::spawn(async move { Store::connect(&url, None, &format!("i{i}")).await })
    });
    for start in starts.collect::<Vec<_>>() {
        start.await.expect("joined").expect("each instance starts");
    }
    let version: i32 = read_one(&database, "SELECT max(version) FROM newshound_schema").await;
    assert_eq!(version as usize, postgres::MIGRATIONS.len());
    database
        .client()
        .await
        .execute("UPDATE newshound_schema SET version = 99", &[])
        .await
        .expect("a newer schema");
    let err = Store::connect(&database.url, None, "late")
        .await
        .expect_err("refused");
    assert!(
        err.to_string().contains("newer than this newshound knows"),
        "{err}"
    );
}

/// `sslmode=require` connects with TLS and checks the server's certificate: a
/// server with a self-signed one (as Debian's default cluster has) is refused with
/// why, not used in clear.
#[tokio::test]
async fn a_url_asking_for_tls_gets_it_checked() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let ssl: String = read_one(&database, "SHOW ssl").await;
    if ssl != "on" {
        eprintln!("skipped: the test server does not offer TLS");
        return;
    }
    let url = format!("{}?sslmode=require", database.url);
    let err = Store::connect(&url, None, "tls")
        .await
        .expect_err("an untrusted certificate");
    let said = err.to_string();
    assert!(said.contains("certificate"), "{said}");
    assert!(!said.contains('\n'), "one line: {said}");
}

/// An instance killed without a word (no `leave`) leaves the list once its heartbeat
/// is older than [`INSTANCE_GONE_AFTER`]; one started again under the same name shows
/// its new start, not the first one's.
#[tokio::test]
async fn a_silent_instance_leaves_the_list_and_a_restarted_one_shows_its_new_start() {
    let Some((database, a, b)) = two_instances().await else {
        return;
    };
    let gone = INSTANCE_GONE_AFTER.as_secs() as i64;
    a.heartbeat("c", at(100)).await.expect("heartbeat");
    b.heartbeat("c", at(100)).await.expect("heartbeat");
    drop(b);
    a.heartbeat("c", at(100 + gone)).await.expect("heartbeat");
    let names = |list: Vec<Instance>| list.into_iter().map(|i| i.name).collect::<Vec<_>>();
    assert_eq!(
        names(a.instances(at(100 + gone)).await.expect("query")),
        ["a", "b"]
    );
    assert_eq!(
        names(a.instances(at(101 + gone)).await.expect("query")),
        ["a"],
        "b has been silent too long"
    );

    let again = Store::connect(&database.url, None, "b")
        .await
        .expect("b again");
    again.heartbeat("c", at(5000)).await.expect("heartbeat");
    again.heartbeat("c", at(5030)).await.expect("heartbeat");
    let b = a
        .instances(at(5030))
        .await
        .expect("query")
        .into_iter()
        .find(|i| i.name == "b")
        .expect("b is back");
    assert_eq!((b.started, b.heartbeat), (at(5000), at(5030)));
}
