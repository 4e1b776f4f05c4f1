//! `loco-api tokens ...`: minting API tokens for operators, scripts and tests.

use chrono::{DateTime, Duration, Utc};
use clap::Subcommand;
use zeroize::Zeroizing;

use crate::flags::DbArgs;
use loco_db::events::Actor;
use loco_db::orgs;
use loco_db::tokens::{self, NewToken, Scope};

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Mints an API token for a member of an org and prints it once; only its SHA-256 is
    /// stored, so a lost token cannot be shown again, only replaced.
    Create(CreateArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The user the token acts for, by user id; they must be a member of the org.
    #[arg(long, env = "LOCO_TOKEN_USER")]
    pub user: i64,
    /// The org the token reaches, by id or name.
    #[arg(long, env = "LOCO_TOKEN_ORG")]
    pub org: String,
    /// What the token may do at most (read, write, admin), comma-separated; the user's
    /// role in the org still applies.
    #[arg(
        long,
        env = "LOCO_TOKEN_SCOPES",
        value_delimiter = ',',
        default_value = "read"
    )]
    pub scopes: Vec<String>,
    /// How long the token is valid: a number with s, m, h or d, at most 365d.
    #[arg(long, env = "LOCO_TOKEN_TTL", default_value = "30d")]
    pub ttl: String,
    /// A name that says where the token is used, e.g. "ci-deploy".
    #[arg(long, env = "LOCO_TOKEN_NAME", default_value = "cli")]
    pub name: String,
}

/// Parses `90s`, `15m`, `12h`, `30d` (1 second to 365 days).
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.char_indices().last().map_or(0, |(i, _)| i);
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("--ttl {text:?} is not a number followed by s, m, h or d"))?;
    let seconds = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(|| format!("--ttl {text:?} is not a number followed by s, m, h or d"))?;
    if !(1..=365 * 86_400).contains(&seconds) {
        return Err(format!("--ttl {text:?} must be between 1s and 365d"));
    }
    Ok(Duration::seconds(seconds))
}

/// Parses `--scopes`.
pub fn parse_scopes(items: &[String]) -> Result<Vec<Scope>, String> {
    let scopes: Vec<Scope> = items
        .iter()
        .map(|s| {
            Scope::parse(s.trim())
                .ok_or_else(|| format!("unknown scope {s:?}: use read, write or admin"))
        })
        .collect::<Result<_, _>>()?;
    if scopes.is_empty() {
        return Err("--scopes needs at least one of read, write, admin".to_string());
    }
    Ok(scopes)
}

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// `--ttl` or `--scopes` as typed is not valid; the message names the flag.
    #[error("{0}")]
    Invalid(String),
    #[error("the token name must be 1 to 100 characters")]
    BadName,
    #[error("user {user} is not a member of org {org}; add them first, or pick another --user")]
    NotAMember { user: i64, org: i64 },
    #[error(transparent)]
    Db(#[from] loco_db::DbError),
}

/// A token's options as the operator's commands take them (as typed on the command
/// line), so `tokens create` and `bootstrap` accept and refuse the same input.
#[derive(Debug, Clone, Copy)]
pub struct TokenOptions<'a> {
    pub name: &'a str,
    pub scopes: &'a [String],
    pub ttl: &'a str,
}

impl TokenOptions<'_> {
    /// The parsed TTL and scopes; commands call it before connecting, so a typo fails fast.
    pub fn check(&self) -> Result<(Duration, Vec<Scope>), MintError> {
        let ttl = parse_ttl(self.ttl).map_err(MintError::Invalid)?;
        let scopes = parse_scopes(self.scopes).map_err(MintError::Invalid)?;
        if self.name.is_empty() || self.name.chars().count() > 100 {
            return Err(MintError::BadName);
        }
        Ok((ttl, scopes))
    }
}

/// A minted token: its id, expiry and plaintext (shown once, never stored).
#[derive(Debug)]
pub struct MintedToken {
    pub id: i64,
    pub expires_at: DateTime<Utc>,
    pub plaintext: Zeroizing<String>,
}

/// Mints a token for `user_id` in `org_id` inside `tx` (the caller commits); recorded as
/// an `api_token_created` event by `actor`.
pub async fn mint_token(
    tx: &mut loco_db::Tx<'_>,
    org_id: i64,
    user_id: i64,
    options: &TokenOptions<'_>,
    actor: &Actor,
) -> Result<MintedToken, MintError> {
    let (ttl, scopes) = options.check()?;
    let expires_at = Utc::now() + ttl;
    let minted = tokens::mint(
        tx,
        &NewToken {
            org_id,
            user_id,
            name: options.name,
            scopes: &scopes,
            expires_at,
        },
        actor,
    )
    .await;
    match minted {
        Ok((id, plaintext)) => Ok(MintedToken {
            id,
            expires_at,
            plaintext,
        }),
        Err(loco_db::DbError::NotFound("membership")) => Err(MintError::NotAMember {
            user: user_id,
            org: org_id,
        }),
        Err(e) => Err(e.into()),
    }
}

pub async fn run(cmd: TokensCommand) -> anyhow::Result<()> {
    match cmd {
        TokensCommand::Create(a) => {
            let options = TokenOptions {
                name: &a.name,
                scopes: &a.scopes,
                ttl: &a.ttl,
            };
            let named = |e: MintError| match e {
                MintError::BadName => anyhow::anyhow!("--name must be 1 to 100 characters"),
                e => e.into(),
            };
            options.check().map_err(named)?;
            let pool = loco_db::connect(&a.db.database_url).await?;
            let org = match a.org.parse::<i64>() {
                Ok(id) => orgs::get_org(&pool, id).await.map(|o| o.id),
                Err(_) => tokens::org_id_by_name(&pool, &a.org).await,
            };
            let org_id = match org {
                Err(loco_db::DbError::NotFound(_)) => anyhow::bail!(
                    "no org {:?}: pass an existing org's id or name to --org",
                    a.org
                ),
                other => other?,
            };
            let mut tx = pool.begin().await.map_err(loco_db::DbError::from)?;
            let token = mint_token(
                &mut tx,
                org_id,
                a.user,
                &options,
                &Actor::System("loco-api-cli"),
            )
            .await
            .map_err(named)?;
            tx.commit().await.map_err(loco_db::DbError::from)?;
            tracing::info!(
                token_id = token.id,
                org_id,
                user_id = a.user,
                "API token created"
            );
            // stdout carries the token alone, so scripts can capture it.
            println!("{}", token.plaintext.as_str());
            eprintln!(
                "token {} created; it is shown only now. Send it as `Authorization: Bearer <token>`.",
                token.id
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("30d").unwrap(), Duration::days(30));
        assert_eq!(parse_ttl("90s").unwrap(), Duration::seconds(90));
        assert_eq!(parse_ttl("12h").unwrap(), Duration::hours(12));
        for bad in ["", "d", "0s", "366d", "5w", "-1h", "1.5h"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scopes() {
        assert_eq!(
            parse_scopes(&["read".into(), "write".into()]).unwrap(),
            vec![Scope::Read, Scope::Write]
        );
        assert!(parse_scopes(&["root".into()]).is_err());
    }
}
