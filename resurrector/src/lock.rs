//! One resurrector per cluster: a Postgres session advisory lock on a connection of its
//! own, held for as long as the process acts. A process that dies (kill -9 included)
//! closes its connection, and Postgres releases the lock with it.

use sqlx::{Connection as _, PgConnection};

use super::error::Error;

/// The held lock; dropping it closes the connection and releases the lock.
#[derive(Debug)]
pub struct ClusterLock {
    conn: Option<PgConnection>,
}

impl ClusterLock {
    /// Takes the cluster's lock, or says who holds it.
    pub async fn take(database_url: &str, cluster_id: i64, cluster: &str) -> Result<Self, Error> {
        let mut conn = PgConnection::connect(database_url)
            .await
            .map_err(|e| Error::Database(loco_db::DbError::from(e).reason().to_owned()))?;
        let me = format!(
            "loco-resurrect pid {} on {}",
            std::process::id(),
            hostname()
        );
        sqlx::query("SELECT set_config('application_name', $1, false)")
            .bind(&me)
            .execute(&mut conn)
            .await
            .map_err(db)?;
        let key = loco_db::cluster_lock_key(cluster_id);
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut conn)
            .await
            .map_err(db)?;
        if got {
            return Ok(ClusterLock { conn: Some(conn) });
        }
        // A bigint advisory key shows in pg_locks as classid (high half), objid (low).
        let holder: Option<(String, Option<chrono::DateTime<chrono::Utc>>)> = sqlx::query_as(
            "SELECT a.application_name, a.backend_start FROM pg_locks l
               JOIN pg_stat_activity a ON a.pid = l.pid
              WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                AND l.classid::bigint = ($1 >> 32) AND l.objid::bigint = ($1 & 4294967295)
              LIMIT 1",
        )
        .bind(key)
        .fetch_optional(&mut conn)
        .await
        .map_err(db)?;
        let holder = match holder {
            Some((name, since)) => format!(
                "held by \"{}\"{}",
                if name.is_empty() { "(unnamed)" } else { &name },
                since
                    .map(|t| format!(" since {}", t.format("%Y-%m-%d %H:%M:%S UTC")))
                    .unwrap_or_default()
            ),
            None => "held by another session".to_owned(),
        };
        Err(Error::Locked {
            cluster: cluster.to_owned(),
            holder,
        })
    }

    /// Releases the lock (dropping does too, when the connection closes).
    pub async fn release(mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = conn.close().await;
        }
    }
}

fn db(e: sqlx::Error) -> Error {
    Error::from(loco_db::DbError::from(e))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "this host".to_owned())
}
