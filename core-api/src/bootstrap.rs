//! `loco-api bootstrap`: the first user, their org and an admin token, without an OAuth
//! login or SQL. Safe to run again: the user and the org are reused, a new token minted.

use clap::ValueEnum;
use sqlx::PgPool;

use crate::flags::DbArgs;
use crate::output::Output;
use crate::tokens::{MintError, MintedToken, TokenOptions, mint_token};
use loco_db::events::{self, Actor, NewEvent};
use loco_db::orgs::{self, Provider, Role};
use loco_db::{DbError, tokens};
use loco_http::validate::is_dns_label;

/// Who the audit trail names for what bootstrap writes.
const ACTOR: Actor = Actor::System("loco-api-bootstrap");

#[derive(Debug, clap::Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The identity provider the user signs in with later: github or google.
    #[arg(long, env = "LOCO_BOOTSTRAP_PROVIDER", value_enum)]
    pub provider: ProviderArg,
    /// The user's login: the GitHub username, or the Google account's email.
    #[arg(long, env = "LOCO_BOOTSTRAP_LOGIN")]
    pub login: String,
    /// The provider's stable id of the user, which a later real sign-in matches: GitHub's
    /// numeric user id (`id` in https://api.github.com/users/LOGIN) or Google's `sub`.
    #[arg(long, env = "LOCO_BOOTSTRAP_PROVIDER_UID")]
    pub provider_uid: String,
    /// The org to create, or to reuse when it exists; the user becomes its owner.
    #[arg(long, env = "LOCO_BOOTSTRAP_ORG")]
    pub org: String,
    /// How long the admin token is valid: a number with s, m, h or d, at most 365d.
    #[arg(long, env = "LOCO_TOKEN_TTL", default_value = "30d")]
    pub ttl: String,
    /// The token's name, which says where it is used.
    #[arg(long, env = "LOCO_TOKEN_NAME", default_value = "bootstrap")]
    pub token_name: String,
    /// text prints the token alone on stdout; json prints the ids and the token.
    #[arg(long, env = "LOCO_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderArg {
    Github,
    Google,
}

impl From<ProviderArg> for Provider {
    fn from(p: ProviderArg) -> Self {
        match p {
            ProviderArg::Github => Provider::Github,
            ProviderArg::Google => Provider::Google,
        }
    }
}

/// What bootstrap is asked for, checked by [`Bootstrap::check`].
#[derive(Debug, Clone, Copy)]
pub struct Bootstrap<'a> {
    pub provider: Provider,
    pub login: &'a str,
    pub provider_uid: &'a str,
    pub org: &'a str,
    pub token: TokenOptions<'a>,
}

/// What bootstrap did.
#[derive(Debug)]
pub struct Bootstrapped {
    pub user_id: i64,
    pub user_created: bool,
    pub org_id: i64,
    pub org_created: bool,
    /// Whether this run made the user owner (false: they already were).
    pub owner_added: bool,
    /// The stored login when an existing user has another one than `--login` (kept: a
    /// real sign-in refreshes it).
    pub kept_login: Option<String>,
    pub token: MintedToken,
}

impl Bootstrap<'_> {
    /// Refuses input that could not work, naming the flag and what to pass instead.
    pub fn check(&self) -> anyhow::Result<()> {
        let plain = |s: &str| {
            (1..=255).contains(&s.chars().count())
                && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        };
        if !plain(self.login) {
            anyhow::bail!(
                "--login must be 1 to 255 characters without spaces (got {:?}): pass the GitHub username or the Google email",
                self.login
            );
        }
        if !plain(self.provider_uid) {
            anyhow::bail!(
                "--provider-uid must be 1 to 255 characters without spaces: pass the provider's id of the user"
            );
        }
        if self.provider == Provider::Github
            && !self.provider_uid.bytes().all(|b| b.is_ascii_digit())
        {
            anyhow::bail!(
                "--provider-uid {:?} is not a GitHub user id: GitHub ids are numbers; `curl -s https://api.github.com/users/{}` shows it as \"id\"",
                self.provider_uid,
                self.login
            );
        }
        if !is_dns_label(self.org) {
            anyhow::bail!(
                "--org {:?} is not a valid org name: use 1 to 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit, e.g. \"acme\"",
                self.org
            );
        }
        self.token.check().map_err(token_flags)?;
        Ok(())
    }
}

/// Names bootstrap's own flags in a token error.
fn token_flags(e: MintError) -> anyhow::Error {
    match e {
        MintError::BadName => anyhow::anyhow!("--token-name must be 1 to 100 characters"),
        e => e.into(),
    }
}

/// Creates (or reuses) the user, the org and the owner membership and mints an admin
/// token, all in one transaction: a failure leaves nothing behind.
pub async fn bootstrap(pool: &PgPool, req: &Bootstrap<'_>) -> anyhow::Result<Bootstrapped> {
    req.check()?;
    let mut tx = pool.begin().await.map_err(DbError::from)?;
    let existing = orgs::user_by_identity(&mut *tx, req.provider, req.provider_uid).await?;
    let (user_id, user_created) = match &existing {
        // An existing user keeps their login and email: a real sign-in refreshes those.
        Some(u) => (u.id, false),
        None => {
            let id = orgs::upsert_user(&mut *tx, req.provider, req.provider_uid, req.login, None)
                .await?;
            (id, true)
        }
    };
    let (org_id, org_created) = match tokens::org_id_by_name(&mut *tx, req.org).await {
        Ok(id) => (id, false),
        Err(DbError::NotFound(_)) => (orgs::create_org(&mut tx, req.org, user_id).await?, true),
        Err(e) => return Err(e.into()),
    };
    // A new org already has the user as owner (create_org adds them).
    let raise =
        !org_created && orgs::role_of(&mut *tx, org_id, user_id).await? != Some(Role::Owner);
    if raise {
        orgs::add_member(&mut *tx, org_id, user_id, Role::Owner).await?;
    }
    let owner_added = org_created || raise;
    let token = mint_token(&mut tx, org_id, user_id, &req.token, &ACTOR)
        .await
        .map_err(token_flags)?;
    let did = |created: bool| if created { "created" } else { "reused" };
    events::record(
        &mut *tx,
        &NewEvent {
            org_id,
            actor: ACTOR,
            reason: "bootstrapped",
            message: format!(
                "loco-api bootstrap: user {user_id} ({}:{} {}) {}, org {} {}, {}, admin token {} minted",
                req.provider.as_str(),
                req.provider_uid,
                req.login,
                did(user_created),
                req.org,
                did(org_created),
                if owner_added {
                    "user made owner"
                } else {
                    "user already owner"
                },
                token.id
            ),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await.map_err(DbError::from)?;
    Ok(Bootstrapped {
        user_id,
        user_created,
        org_id,
        org_created,
        owner_added,
        kept_login: existing
            .map(|u| u.login)
            .filter(|stored| stored != req.login),
        token,
    })
}

pub async fn run(a: BootstrapArgs) -> anyhow::Result<()> {
    let scopes = ["admin".to_string()];
    let req = Bootstrap {
        provider: a.provider.into(),
        login: &a.login,
        provider_uid: &a.provider_uid,
        org: &a.org,
        token: TokenOptions {
            name: &a.token_name,
            scopes: &scopes,
            ttl: &a.ttl,
        },
    };
    // Before connecting, so a typo does not wait on the database.
    req.check()?;
    let pool = loco_db::connect(&a.db.database_url).await?;
    let done = bootstrap(&pool, &req).await?;
    pool.close().await;
    tracing::info!(
        user_id = done.user_id,
        user_created = done.user_created,
        org_id = done.org_id,
        org_created = done.org_created,
        owner_added = done.owner_added,
        token_id = done.token.id,
        "bootstrap done"
    );
    if let Some(login) = &done.kept_login {
        eprintln!(
            "note: user {} already exists with login {login:?}; it was kept (the next sign-in updates it)",
            done.user_id
        );
    }
    match a.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "user_id": done.user_id,
                "user_created": done.user_created,
                "org_id": done.org_id,
                "org_created": done.org_created,
                "token_id": done.token.id,
                "token": done.token.plaintext.as_str(),
                "expires_at": done.token.expires_at,
            })
        ),
        Output::Text => {
            // stdout carries the token alone, so scripts can capture it.
            println!("{}", done.token.plaintext.as_str());
            let did = |created: bool| if created { "created" } else { "reused" };
            eprintln!(
                "user {} {}, org {} ({}) {}, admin token {} minted, valid until {}. It is shown only now: send it as `Authorization: Bearer <token>`.",
                done.user_id,
                did(done.user_created),
                a.org,
                done.org_id,
                did(done.org_created),
                done.token.id,
                done.token.expires_at.to_rfc3339()
            );
        }
    }
    Ok(())
}
