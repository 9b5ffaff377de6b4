//! The handlers: each translates HTTP to a subscription change and back.

use crate::App;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_callback::standard::WebhookSecret;
use cairn_callback::{Callback, Method, check_url};
use cairn_core::access::Action;
use cairn_core::auth::Principal;
use cairn_core::events::{NewEvent, Subject, cursor_at, event_time, type_matches};
use cairn_core::repositories::Audience;
use cairn_core::webhooks::{AttemptRecord, Delivery, SigningSecret, Webhook};
use cairn_http::openapi::{Conflict, Refusals};
use cairn_http::{ApiError, Caller, JsonBody, PathParams, json, unix_now as now};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

type AppState = State<Arc<App>>;

/// Grace period of a rotated-out secret unless the request names one, seconds.
const DEFAULT_GRACE_SECS: i64 = 24 * 3600;
/// Longest grace period, seconds.
const MAX_GRACE_SECS: i64 = 7 * 24 * 3600;
/// Attempts at a read-modify-write that races another change.
const UPDATE_ATTEMPTS: u32 = 5;

/// The subscription as its owner sees it: never a secret.
fn public(hook: &Webhook) -> Value {
    json!({
        "id": hook.id, "url": hook.url, "events": hook.events, "subjects": hook.subjects,
        "description": hook.description, "enabled": hook.enabled,
        "disabled_reason": hook.disabled_reason, "created_at": hook.created_at,
        "updated_at": hook.updated_at,
        "secrets": hook.secrets.iter()
            .map(|s| json!({"created_at": s.created_at, "expires_at": s.expires_at}))
            .collect::<Vec<_>>(),
    })
}

/// Refuses a URL Cairn would not deliver to: other schemes, credentials, no host, and
/// hosts that resolve to loopback, private, link-local or other special addresses.
async fn check_hook_url(app: &App, url: &str) -> Result<String, ApiError> {
    let callback = Callback::new(url, Method::Post)
        .map_err(|e| ApiError::bad_request(format!("webhook URL refused: {e}")))?;
    check_url(callback.url(), &app.policy)
        .await
        .map_err(|e| ApiError::bad_request(format!("webhook URL refused: {e}")))?;
    Ok(callback.url().to_string())
}

fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(e.to_string())
}

/// The event types that are an account's own (its operations', webhooks' and
/// builds'): only a credential with the `events` scope subscribes to them, as only it
/// reads them.
const OWN_EVENT_TYPES: [&str; 6] = [
    "operation.finished",
    "webhook.disabled",
    "build.started",
    "build.action.finished",
    "build.finished",
    "log.appended",
];

fn require_events_for(caller: &Principal, patterns: &[String]) -> Result<(), ApiError> {
    if patterns
        .iter()
        .any(|p| OWN_EVENT_TYPES.iter().any(|t| type_matches(p, t)))
    {
        caller.require(Action::Events, "")?;
    }
    Ok(())
}

/// `POST /v1/webhooks` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    url: String,
    events: Vec<String>,
    #[serde(default)]
    subjects: Vec<String>,
    #[serde(default)]
    description: String,
}

/// `POST /v1/webhooks`: a new subscription; its secret is in this answer only.
#[utoipa::path(
    post, path = "/v1/webhooks", operation_id = "create_webhook", tag = "webhooks",
    summary = "Subscribe a URL to events",
    description = "The URL must be public (no private, loopback or link-local address, no \
        credentials, http or https). The answer carries the signing secret (`whsec_…`), \
        shown this once.",
    request_body = CreateWebhook,
    responses((status = 201, description = "The subscription and its secret", body = Object), Refusals),
    security(("basic" = [])),
)]
pub async fn create(
    State(app): AppState,
    Caller(caller): Caller,
    body: JsonBody<CreateWebhook>,
) -> Result<Response, ApiError> {
    caller.require(Action::Webhooks, "")?;
    let body = body.value;
    require_events_for(&caller, &body.events)?;
    let secret = WebhookSecret::generate();
    let now = now();
    let mut hook = Webhook {
        id: format!("wh_{}", uuid::Uuid::new_v4().simple()),
        owner: caller.name,
        url: body.url,
        events: body.events,
        subjects: body.subjects,
        description: body.description,
        enabled: true,
        disabled_reason: None,
        secrets: vec![SigningSecret {
            secret: secret.expose(),
            created_at: now,
            expires_at: None,
        }],
        created_at: now,
        updated_at: now,
        version: 1,
        made_with: caller.token.is_some().then(|| caller.scopes.clone()),
    };
    hook.validate().map_err(invalid)?;
    hook.url = check_hook_url(&app, &hook.url).await?;
    if !app.hooks.create_webhook(&hook).await? {
        return Err(ApiError::internal(format!("webhook id {} taken", hook.id)));
    }
    let mut answer = public(&hook);
    answer["secret"] = json!(secret.expose());
    Ok(json(201, &answer))
}

/// `GET /v1/webhooks`: the caller's subscriptions.
#[utoipa::path(
    get, path = "/v1/webhooks", operation_id = "list_webhooks", tag = "webhooks",
    summary = "The caller's subscriptions",
    responses((status = 200, description = "`{\"webhooks\": [...]}`, without secrets", body = Object), Refusals),
    security(("basic" = [])),
)]
pub async fn list(State(app): AppState, Caller(caller): Caller) -> Result<Response, ApiError> {
    caller.require(Action::Webhooks, "")?;
    let hooks: Vec<Value> = app
        .hooks
        .list_webhooks()
        .await?
        .iter()
        .filter(|h| h.owner == caller.name)
        .map(public)
        .collect();
    Ok(json(200, &json!({"webhooks": hooks})))
}

/// The caller's subscription `id`; anyone else's, or none, is a 404.
async fn owned(app: &App, id: &str, owner: &str) -> Result<Webhook, ApiError> {
    let not_found = || ApiError::not_found(format!("no webhook {id}"));
    if !id.starts_with("wh_") || id.len() > 64 {
        return Err(not_found());
    }
    app.hooks
        .get_webhook(id)
        .await?
        .filter(|h| h.owner == owner)
        .ok_or_else(not_found)
}

/// `GET /v1/webhooks/{id}`.
#[utoipa::path(
    get, path = "/v1/webhooks/{id}", operation_id = "show_webhook", tag = "webhooks",
    summary = "One subscription",
    params(("id" = String, Path, description = "The webhook's id (`wh_…`)")),
    responses((status = 200, description = "The subscription, without its secret", body = Object), Refusals),
    security(("basic" = [])),
)]
pub async fn show(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    caller.require(Action::Webhooks, "")?;
    Ok(json(200, &public(&owned(&app, &id, &caller.name).await?)))
}

/// `PATCH /v1/webhooks/{id}` body: the fields to change.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    url: Option<String>,
    events: Option<Vec<String>>,
    subjects: Option<Vec<String>>,
    description: Option<String>,
    enabled: Option<bool>,
}

/// Reads, changes and writes back a subscription, again if another change won.
async fn modify(
    app: &App,
    id: &str,
    owner: &str,
    change: impl Fn(&mut Webhook) -> Result<(), ApiError>,
) -> Result<Webhook, ApiError> {
    for _ in 0..UPDATE_ATTEMPTS {
        let mut hook = owned(app, id, owner).await?;
        change(&mut hook)?;
        hook.updated_at = now();
        hook.version += 1;
        if app.hooks.replace_webhook(&hook).await? {
            return Ok(hook);
        }
    }
    Err(ApiError::conflict(format!(
        "webhook {id} kept changing under this request; try again"
    )))
}

/// `PATCH /v1/webhooks/{id}`: change the URL, filters, description; enable or disable.
#[utoipa::path(
    patch, path = "/v1/webhooks/{id}", operation_id = "update_webhook", tag = "webhooks",
    summary = "Change a subscription",
    description = "Change the URL, filters or description; enable or disable it.",
    params(("id" = String, Path, description = "The webhook's id (`wh_…`)")),
    request_body = UpdateWebhook,
    responses((status = 200, description = "The subscription as changed", body = Object), Refusals, Conflict),
    security(("basic" = [])),
)]
pub async fn update(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
    body: JsonBody<UpdateWebhook>,
) -> Result<Response, ApiError> {
    caller.require(Action::Webhooks, "")?;
    let body = body.value;
    if let Some(events) = &body.events {
        require_events_for(&caller, events)?;
    }
    let url = match &body.url {
        Some(url) => Some(check_hook_url(&app, url).await?),
        None => None,
    };
    let hook = modify(&app, &id, &caller.name, |hook| {
        if let Some(url) = &url {
            hook.url.clone_from(url);
        }
        if let Some(events) = &body.events {
            hook.events.clone_from(events);
        }
        if let Some(subjects) = &body.subjects {
            hook.subjects.clone_from(subjects);
        }
        if let Some(description) = &body.description {
            hook.description.clone_from(description);
        }
        match body.enabled {
            Some(true) => {
                hook.enabled = true;
                hook.disabled_reason = None;
            }
            Some(false) => {
                hook.enabled = false;
                hook.disabled_reason = Some("disabled by its owner".into());
            }
            None => {}
        }
        hook.validate().map_err(invalid)
    })
    .await?;
    Ok(json(200, &public(&hook)))
}

/// `DELETE /v1/webhooks/{id}`.
#[utoipa::path(
    delete, path = "/v1/webhooks/{id}", operation_id = "delete_webhook", tag = "webhooks",
    summary = "Delete a subscription",
    params(("id" = String, Path, description = "The webhook's id (`wh_…`)")),
    responses((status = 204, description = "Deleted"), Refusals),
    security(("basic" = [])),
)]
pub async fn delete(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    caller.require(Action::Webhooks, "")?;
    owned(&app, &id, &caller.name).await?;
    app.hooks.delete_webhook(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/webhooks/{id}/rotate` body.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    grace_seconds: Option<i64>,
}

/// `POST /v1/webhooks/{id}/rotate`: a new secret; the previous one keeps signing
/// beside it for `grace_seconds` (default a day, 0 ends it now). Older secrets end now.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/rotate", operation_id = "rotate_secret", tag = "webhooks",
    summary = "Make a new signing secret",
    description = "The previous secret keeps signing beside the new one for `grace_seconds` \
        (default a day, 0 ends it now): two signatures in one header.",
    params(("id" = String, Path, description = "The webhook's id (`wh_…`)")),
    request_body(content = Rotate, description = "Optional"),
    responses((status = 200, description = "The new secret, shown this once", body = Object), Refusals, Conflict),
    security(("basic" = [])),
)]
pub async fn rotate(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    caller.require(Action::Webhooks, "")?;
    // The body is optional: none means the default grace period.
    let bytes = cairn_http::read_body(body, cairn_http::MAX_JSON_BODY, "").await?;
    let body: Rotate = if bytes.iter().all(u8::is_ascii_whitespace) {
        Rotate::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("invalid request: {e}")))?
    };
    let grace = body.grace_seconds.unwrap_or(DEFAULT_GRACE_SECS);
    if !(0..=MAX_GRACE_SECS).contains(&grace) {
        return Err(ApiError::bad_request(format!(
            "grace_seconds must be between 0 and {MAX_GRACE_SECS}"
        )));
    }
    let secret = WebhookSecret::generate();
    let text = secret.expose();
    let now = now();
    let hook = modify(&app, &id, &caller.name, |hook| {
        let mut previous = hook
            .secrets
            .iter()
            .find(|s| s.expires_at.is_none())
            .cloned();
        if let Some(p) = previous.as_mut() {
            p.expires_at = Some(now + grace);
        }
        hook.secrets = std::iter::once(SigningSecret {
            secret: text.clone(),
            created_at: now,
            expires_at: None,
        })
        .chain(previous.filter(|_| grace > 0))
        .collect();
        Ok(())
    })
    .await?;
    let mut answer = public(&hook);
    answer["secret"] = json!(text);
    Ok(json(200, &answer))
}

/// `POST /v1/webhooks/{id}/ping`: a `ping` event for this subscription only, delivered
/// like any other (whatever its filters).
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/ping", operation_id = "ping_webhook", tag = "webhooks",
    summary = "Send a test event",
    params(("id" = String, Path, description = "The webhook's id (`wh_…`)")),
    responses((status = 202, description = "The `ping` event's id", body = Object), Refusals),
    security(("basic" = [])),
)]
pub async fn ping(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    caller.require(Action::Webhooks, "")?;
    let hook = owned(&app, &id, &caller.name).await?;
    let event = NewEvent::new(
        "ping",
        Subject::webhook(&hook.id),
        json!({"webhook": hook.id, "owner": hook.owner}),
    );
    if !app.hooks.commit_webhook_event(&hook.id, &event).await? {
        return Err(ApiError::not_found(format!("no webhook {id}")));
    }
    Ok(json(202, &json!({"event_id": event.id, "type": "ping"})))
}

/// `?before=<seq>&limit=<n>` of the delivery log.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    before: Option<u64>,
    limit: Option<usize>,
}

fn attempt_json(a: &AttemptRecord) -> Value {
    serde_json::to_value(a).unwrap_or(Value::Null)
}

/// `GET /v1/webhooks/{id}/deliveries`: attempts, newest event first.
#[utoipa::path(
    get, path = "/v1/webhooks/{id}/deliveries", operation_id = "list_deliveries", tag = "webhooks",
    summary = "The delivery log",
    description = "Attempts, newest event first: time, status, duration, error, the first KiB \
        of the answer, the next attempt.",
    params(("id" = String, Path, description = "The webhook's id (`wh_…`)"), Page),
    responses((status = 200, description = "A page of attempts and the `before` of the next", body = Object), Refusals),
    security(("basic" = [])),
)]
pub async fn deliveries(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(Action::Webhooks, "")?;
    let Query(page) = page.map_err(|e| ApiError::bad_request(e.body_text()))?;
    owned(&app, &id, &caller.name).await?;
    let limit = page.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 1000"));
    }
    let attempts = app.deliveries.attempts(&id, page.before, limit).await?;
    let next = (attempts.len() == limit)
        .then(|| attempts.last().map(|a| a.seq.to_string()))
        .flatten();
    Ok(json(
        200,
        &json!({"attempts": attempts.iter().map(attempt_json).collect::<Vec<_>>(),
               "next_before": next}),
    ))
}

/// `GET /v1/webhooks/{id}/deliveries/{seq}`: every attempt to deliver one event.
#[utoipa::path(
    get, path = "/v1/webhooks/{id}/deliveries/{seq}", operation_id = "show_delivery", tag = "webhooks",
    summary = "Every attempt to deliver one event",
    params(("id" = String, Path, description = "The webhook's id (`wh_…`)"), ("seq" = u64, Path, description = "The event's log position")),
    responses((status = 200, description = "The event's attempts", body = Object), Refusals),
    security(("basic" = [])),
)]
pub async fn delivery(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams((id, seq)): PathParams<(String, u64)>,
) -> Result<Response, ApiError> {
    caller.require(Action::Webhooks, "")?;
    owned(&app, &id, &caller.name).await?;
    let mut attempts: Vec<AttemptRecord> = app
        .deliveries
        .attempts(&id, Some(seq.saturating_add(1)), 1000)
        .await?
        .into_iter()
        .filter(|a| a.seq == seq)
        .collect();
    if attempts.is_empty() {
        return Err(ApiError::not_found(format!(
            "webhook {id} has no delivery of event {seq}"
        )));
    }
    attempts.reverse();
    Ok(json(
        200,
        &json!({"seq": seq, "event_id": attempts[0].event_id, "type": attempts[0].event_type,
               "attempts": attempts.iter().map(attempt_json).collect::<Vec<_>>()}),
    ))
}

/// `POST /v1/webhooks/{id}/deliveries/{seq}/redeliver`: that event again, with a
/// fresh retry schedule, whatever became of the earlier attempts.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/deliveries/{seq}/redeliver", operation_id = "redeliver", tag = "webhooks",
    summary = "Send one event again",
    description = "With a fresh retry schedule, whatever became of the earlier attempts.",
    params(("id" = String, Path, description = "The webhook's id (`wh_…`)"), ("seq" = u64, Path, description = "The event's log position")),
    responses((status = 202, description = "Queued", body = Object), Refusals, Conflict),
    security(("basic" = [])),
)]
pub async fn redeliver(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams((id, seq)): PathParams<(String, u64)>,
) -> Result<Response, ApiError> {
    caller.require(Action::Webhooks, "")?;
    let hook = owned(&app, &id, &caller.name).await?;
    if !hook.enabled {
        return Err(ApiError::conflict(format!(
            "webhook {id} is disabled; enable it first (PATCH {{\"enabled\": true}})"
        )));
    }
    let delivered = app
        .deliveries
        .attempts(&id, Some(seq.saturating_add(1)), 1)
        .await?
        .into_iter()
        .any(|a| a.seq == seq);
    if !delivered {
        return Err(ApiError::not_found(format!(
            "webhook {id} has no delivery of event {seq} to repeat"
        )));
    }
    app.queue
        .enqueue(
            &[Delivery {
                hook: id,
                seq,
                attempt: 1,
                not_before: now(),
                reason: "redeliver".into(),
            }],
            0,
        )
        .await?;
    Ok(json(202, &json!({"queued": 1, "seq": seq})))
}

/// `POST /v1/webhooks/{id}/replay` body: a cursor (`seq` of an event) or a time.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    since: Value,
}

/// Most events one replay call sends; a larger gap is replayed in several calls.
const MAX_REPLAY: usize = 10_000;
/// Longest one replay call reads the log, well inside API Gateway's 29 s; a longer
/// scan (a narrow filter over a long log) goes on in the next call.
const REPLAY_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// `POST /v1/webhooks/{id}/replay`: every event after `since` (a cursor, or an RFC
/// 3339 time) that the subscription wants, sent again (recovery after an outage).
/// One call sends at most [`MAX_REPLAY`] events and reads for at most
/// [`REPLAY_BUDGET`]; unless `complete`, call again with `since` = the answer's `next`.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/replay", operation_id = "replay", tag = "webhooks",
    summary = "Send every wanted event since a cursor or a time again",
    description = "One call sends up to 10,000 events and reads the log for up to 10 s; \
        unless `complete`, call again with `since` = `next`.",
    params(("id" = String, Path, description = "The webhook's id (`wh_…`)")),
    request_body = Replay,
    responses((status = 202, description = "`{\"queued\", \"next\", \"complete\"}`", body = Object), Refusals, Conflict),
    security(("basic" = [])),
)]
pub async fn replay(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
    body: JsonBody<Replay>,
) -> Result<Response, ApiError> {
    caller.require(Action::Webhooks, "")?;
    let hook = owned(&app, &id, &caller.name).await?;
    if !hook.enabled {
        return Err(ApiError::conflict(format!(
            "webhook {id} is disabled; enable it first (PATCH {{\"enabled\": true}})"
        )));
    }
    let since = &body.value.since;
    let (mut after, not_before) = match since {
        Value::Number(n) => (
            n.as_u64()
                .ok_or_else(|| invalid("since must be a cursor or a time"))?,
            None,
        ),
        Value::String(t) => match t.parse::<u64>() {
            Ok(cursor) => (cursor, None),
            Err(_) => {
                let time =
                    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                        .map_err(|e| {
                            invalid(format!(
                                "since {t:?} is neither a cursor nor an RFC 3339 time: {e}"
                            ))
                        })?;
                (cursor_at(app.log.as_ref(), time).await?, Some(time))
            }
        },
        _ => {
            return Err(invalid(
                "since must be a cursor (the seq of an event) or an RFC 3339 time",
            ));
        }
    };
    let deadline = tokio::time::Instant::now() + REPLAY_BUDGET;
    let head = app.log.head().await?;
    let now = now();
    let mut queued = 0;
    let users: &dyn cairn_core::ports::UserDirectory = app.users.as_ref();
    let audience = Audience::new(&app.seed, app.repositories.as_ref(), users);
    while after < head && queued < MAX_REPLAY && tokio::time::Instant::now() < deadline {
        let events = app.log.events_after(None, after, 1000).await?;
        let Some(end) = events.last().map(|e| e.seq) else {
            after = head;
            break;
        };
        let mut batch = Vec::new();
        for e in events
            .iter()
            .filter(|e| not_before.is_none_or(|t| event_time(e).is_some_and(|at| at >= t)))
            .filter(|e| hook.wants(e))
        {
            if batch.len() == MAX_REPLAY - queued {
                break;
            }
            // A private repository's events only if the owner may read it.
            if audience
                .may_read(&hook.owner, hook.made_with.as_ref(), e)
                .await?
            {
                batch.push(Delivery {
                    hook: id.clone(),
                    seq: e.seq,
                    attempt: 1,
                    not_before: now,
                    reason: "replay".into(),
                });
            }
        }
        queued += batch.len();
        app.queue.enqueue(&batch, 0).await?;
        // Cut short by the count: go on after the last event sent, not the last read.
        after = if queued == MAX_REPLAY {
            batch.last().map_or(end, |d| d.seq)
        } else {
            end
        };
    }
    Ok(json(
        202,
        &json!({"queued": queued, "next": after.to_string(), "complete": after >= head}),
    ))
}
