//! `webhook-worker`: one delivery attempt per queue message (docs/events.md,
//! "Delivery").
//!
//! An attempt POSTs the event, as the log holds it, with Standard Webhooks headers
//! (`webhook-id` = the event id, stable across attempts; `webhook-timestamp`;
//! `webhook-signature` with one signature per live secret), to the subscription's URL
//! checked again against the address policy, without following redirects, and records
//! what happened. Then:
//! - 2xx: done; the subscription is no longer failing.
//! - 410 Gone: the subscription is disabled at once (`webhook.disabled`).
//! - anything else: the next attempt is queued after the schedule's wait (longer waits
//!   than SQS's 15 minutes are several hops); a subscription whose deliveries have all
//!   failed for `disable_after` is disabled (`webhook.disabled`).
//!
//! A worker that dies mid-attempt leaves the message to SQS, which hands it out again:
//! an attempt may repeat, a delivery is never lost.

use async_trait::async_trait;
use bytes::Bytes;
use cairn_callback::standard::{WebhookSecret, signature_header};
use cairn_callback::{Attempt, AttemptError, Callback, Method, Outgoing};
use cairn_core::StoreError;
use cairn_core::events::{EventLog, NewEvent, Subject};
use cairn_core::webhooks::{
    AttemptRecord, Delivery, DeliveryLog, DeliveryQueue, RetrySchedule, Webhook, WebhookStore,
};
use serde_json::json;
use std::sync::Arc;

/// Sends one signed request.
#[async_trait]
pub trait Sender: Send + Sync {
    /// POSTs `body` to `url` with `headers`.
    async fn post(&self, url: &str, headers: &[(&str, String)], body: Bytes) -> Attempt;
}

#[async_trait]
impl Sender for Outgoing {
    async fn post(&self, url: &str, headers: &[(&str, String)], body: Bytes) -> Attempt {
        match Callback::new(url, Method::Post) {
            Ok(target) => self.send(target.url(), "POST", headers, body).await,
            Err(e) => Attempt {
                at: time::OffsetDateTime::now_utc(),
                http_status: None,
                error: Some(e.to_string()),
                error_kind: Some(AttemptError::Refused),
                duration_ms: 0,
                response: None,
            },
        }
    }
}

/// Everything an attempt needs, built once per cold start.
pub struct Worker {
    /// Subscriptions.
    pub hooks: Arc<dyn WebhookStore>,
    /// The event log.
    pub log: Arc<dyn EventLog>,
    /// The delivery log.
    pub deliveries: Arc<dyn DeliveryLog>,
    /// The delivery queue (retries).
    pub queue: Arc<dyn DeliveryQueue>,
    /// The HTTP side.
    pub sender: Arc<dyn Sender>,
    /// Waits between attempts.
    pub schedule: RetrySchedule,
    /// A subscription failing this long (seconds) without a success is disabled.
    pub disable_after: i64,
}

/// What became of a delivery message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not due yet: queued again for later.
    Deferred,
    /// The subscription or the event is gone, or the subscription is disabled.
    Dropped(&'static str),
    /// Delivered (2xx).
    Delivered,
    /// Failed; the next attempt is queued.
    Retrying,
    /// Failed for good (no attempt left, or a refused target).
    Failed,
    /// The subscription was disabled by this attempt.
    Disabled,
}

impl Worker {
    /// Handles one delivery at `now` (Unix seconds).
    pub async fn handle(&self, delivery: &Delivery, now: i64) -> Result<Outcome, StoreError> {
        if delivery.not_before > now {
            let wait = u32::try_from(delivery.not_before - now).unwrap_or(u32::MAX);
            self.queue
                .enqueue(std::slice::from_ref(delivery), wait.min(900))
                .await?;
            return Ok(Outcome::Deferred);
        }
        let Some(hook) = self.hooks.get_webhook(&delivery.hook).await? else {
            return Ok(Outcome::Dropped("the subscription was deleted"));
        };
        if !hook.enabled {
            return Ok(Outcome::Dropped("the subscription is disabled"));
        }
        let Some(event) = self.log.event_at(delivery.seq).await? else {
            return Ok(Outcome::Dropped("the event is no longer kept"));
        };
        let body = Bytes::from(
            serde_json::to_vec(&event).map_err(|e| StoreError::new("encode event", e))?,
        );
        let secrets: Vec<WebhookSecret> = hook
            .signing_secrets(now)
            .into_iter()
            .filter_map(|s| WebhookSecret::parse(s).ok())
            .collect();
        let headers = [
            ("webhook-id", event.id.clone()),
            ("webhook-timestamp", now.to_string()),
            (
                "webhook-signature",
                signature_header(&secrets, &event.id, now, &body),
            ),
        ];
        let attempt = self.sender.post(&hook.url, &headers, body).await;
        let gone = attempt.http_status == Some(410);
        let refused = attempt.error_kind == Some(AttemptError::Refused);
        let next = if attempt.is_success() || gone || refused {
            None
        } else {
            self.schedule
                .delay_after(delivery.attempt, rand::random::<f64>())
                .map(|wait| now + i64::try_from(wait).unwrap_or(i64::MAX / 2))
        };
        let record = AttemptRecord {
            hook: hook.id.clone(),
            seq: event.seq,
            event_id: event.id.clone(),
            event_type: event.kind.clone(),
            attempt: delivery.attempt,
            reason: delivery.reason.clone(),
            at: attempt
                .at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            http_status: attempt.http_status,
            error: attempt.error.clone(),
            duration_ms: attempt.duration_ms,
            response: attempt.response.clone(),
            next_attempt_at: next,
        };
        self.deliveries.record_attempt(&record).await?;
        tracing::info!(
            hook = hook.id,
            seq = event.seq,
            attempt = delivery.attempt,
            http_status = attempt.http_status,
            error = attempt.error.as_deref(),
            "webhook attempt"
        );
        cairn_core::metrics::Metrics::new()
            .count("WebhookDeliveryAttempts", 1)
            .count("WebhookDeliveryFailures", u64::from(!attempt.is_success()))
            .millis("WebhookDeliveryDuration", u128::from(attempt.duration_ms))
            .property("hook", hook.id.as_str())
            .emit();
        if attempt.is_success() {
            self.hooks.note_success(&hook.id).await?;
            return Ok(Outcome::Delivered);
        }
        if gone {
            return self
                .disable(hook, "the endpoint answered 410 Gone", now)
                .await;
        }
        let failing_since = self.hooks.note_failure(&hook.id, now).await?;
        if now - failing_since >= self.disable_after {
            let reason = format!(
                "every delivery failed for {} s (since {failing_since})",
                now - failing_since
            );
            return self.disable(hook, &reason, now).await;
        }
        match next {
            Some(at) => {
                let again = Delivery {
                    attempt: delivery.attempt + 1,
                    not_before: at,
                    ..delivery.clone()
                };
                let wait = u32::try_from(at - now).unwrap_or(u32::MAX);
                self.queue.enqueue(&[again], wait.min(900)).await?;
                Ok(Outcome::Retrying)
            }
            None => Ok(Outcome::Failed),
        }
    }

    async fn disable(
        &self,
        mut hook: Webhook,
        reason: &str,
        now: i64,
    ) -> Result<Outcome, StoreError> {
        hook.enabled = false;
        hook.disabled_reason = Some(reason.to_string());
        hook.updated_at = now;
        hook.version += 1;
        let event = NewEvent::new(
            "webhook.disabled",
            Subject::webhook(&hook.id),
            json!({"webhook": hook.id, "owner": hook.owner, "url": hook.url, "reason": reason}),
        );
        // Changed meanwhile (its owner edited it): the next failure decides again.
        self.hooks.disable_webhook(&hook, &event).await?;
        Ok(Outcome::Disabled)
    }
}
