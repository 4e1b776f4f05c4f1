//! The database side of the public `GET /status`: deploy durations, unhealthy
//! clusters and open incidents. Nothing here names an org, workspace or app, and no
//! cluster endpoint or credential is ever selected: the page is public.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::DbError;

/// Finished deployments over a window and their average duration.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployDurations {
    /// Deployments that finished (ready, failed or since superseded) in the window,
    /// with a start time.
    pub finished: i64,
    /// Mean of `finished_at - started_at`, in seconds; `None` without any.
    pub average_seconds: Option<f64>,
}

/// Deployments that finished after `since`: how many, and how long they took on average.
pub async fn deploy_durations(
    db: impl PgExecutor<'_>,
    since: DateTime<Utc>,
) -> Result<DeployDurations, DbError> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "finished!",
                  avg(extract(epoch FROM finished_at - started_at))::float8 AS average_seconds
             FROM deployments
            WHERE finished_at IS NOT NULL AND finished_at > $1 AND started_at IS NOT NULL"#,
        since
    )
    .fetch_one(db)
    .await?;
    Ok(DeployDurations {
        finished: row.finished,
        average_seconds: row.average_seconds,
    })
}

/// A cluster whose health row is anything but healthy, as the public may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnhealthyCluster {
    pub name: String,
    pub provider: String,
    pub region: String,
    pub status: String,
    pub reason: Option<String>,
    pub checked_at: Option<DateTime<Utc>>,
}

/// Clusters whose status (written by the resurrector's probes) is not `healthy`, by
/// name; at most `limit`.
pub async fn unhealthy_clusters(
    db: impl PgExecutor<'_>,
    limit: i64,
) -> Result<Vec<UnhealthyCluster>, DbError> {
    Ok(sqlx::query_as!(
        UnhealthyCluster,
        r#"SELECT c.name, r.provider, r.name AS region, c.status, c.status_reason AS reason,
                  c.checked_at
             FROM clusters c JOIN regions r ON r.id = c.region_id
            WHERE c.status <> 'healthy'
            ORDER BY c.name LIMIT $1"#,
        limit
    )
    .fetch_all(db)
    .await?)
}

/// One kind of incident: the event reason that opens it and those that close it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentKind {
    pub kind: &'static str,
    pub opened_by: &'static str,
    pub closed_by: &'static [&'static str],
}

/// The incidents `/status` reports, from the audit trail. An incident of a kind is open
/// for a cluster when the newest event of that kind (opening or closing reason) recorded
/// for one of the cluster's workspaces in the look-back window is the opening one.
/// Events without a workspace count towards a "platform" incident (no cluster).
pub const INCIDENT_KINDS: &[IncidentKind] = &[
    IncidentKind {
        kind: "cluster_unreachable",
        opened_by: "cluster_unreachable",
        closed_by: &["cluster_recovered"],
    },
    IncidentKind {
        kind: "cluster_rebuild",
        opened_by: "rebuild_started",
        closed_by: &["rebuild_finished"],
    },
];

/// An open incident, aggregated over the workspaces it was recorded for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIncident {
    pub kind: String,
    /// The cluster's name; `None` for events that named no (longer existing) workspace.
    pub cluster: Option<String>,
    /// The earliest still-open opening event.
    pub since: DateTime<Utc>,
    /// Workspaces (of any org) the open events were recorded for.
    pub workspaces: i64,
}

/// Open incidents (see [`INCIDENT_KINDS`]) from events newer than `since`; at most `limit`.
pub async fn open_incidents(
    db: impl PgExecutor<'_>,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<OpenIncident>, DbError> {
    let (mut kinds, mut reasons, mut opens) = (vec![], vec![], vec![]);
    for k in INCIDENT_KINDS {
        kinds.push(k.kind.to_string());
        reasons.push(k.opened_by.to_string());
        opens.push(true);
        for closer in k.closed_by {
            kinds.push(k.kind.to_string());
            reasons.push((*closer).to_string());
            opens.push(false);
        }
    }
    Ok(sqlx::query_as!(
        OpenIncident,
        r#"WITH k AS (SELECT * FROM unnest($1::text[], $2::text[], $3::bool[]) AS k(kind, reason, opens)),
           latest AS (
               SELECT DISTINCT ON (k.kind, e.workspace_id)
                      k.kind, e.workspace_id, k.opens, e.created_at
                 FROM events e JOIN k ON k.reason = e.reason
                WHERE e.created_at > $4 AND e.reason = ANY($2)
                ORDER BY k.kind, e.workspace_id, e.id DESC)
           SELECT l.kind AS "kind!", c.name AS "cluster?", min(l.created_at) AS "since!",
                  count(*) AS "workspaces!"
             FROM latest l
             LEFT JOIN workspaces w ON w.id = l.workspace_id
             LEFT JOIN clusters c ON c.id = w.cluster_id
            WHERE l.opens
            GROUP BY l.kind, c.name
            ORDER BY 3 LIMIT $5"#,
        &kinds,
        &reasons,
        &opens,
        since,
        limit
    )
    .fetch_all(db)
    .await?)
}
