//! Audit events: one per accepted or denied request, with the seven fields of the
//! framework (agent, delegated subject, resource, action, decision, time and
//! correlation id, risk state, remediation) and, under enforcement
//! ([`crate::GuardLayer::authorize`]), the ids of the determining policies. Never
//! tokens or keys.

use std::sync::{Arc, Mutex, PoisonError};

/// The decision of the guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The caller was authenticated (or the route allows anonymous access).
    Allow,
    /// The request was refused; the reason is [`crate::GuardError::code`].
    Deny {
        /// The stable reason code.
        reason: String,
    },
}

impl Decision {
    /// `allow` or `deny`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny { .. } => "deny",
        }
    }

    /// The reason code (`none` for an allow).
    pub fn reason(&self) -> &str {
        match self {
            Decision::Allow => "none",
            Decision::Deny { reason } => reason,
        }
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// 1. The agent: its workload identifier, or `unauthenticated`.
    pub agent: String,
    /// 1b. The mechanism the agent used, if authenticated.
    pub mechanism: Option<&'static str>,
    /// 2. The subject the agent acts for, if any (a token `sub` that is not the agent).
    pub delegated_subject: Option<String>,
    /// 2b. The RFC 8693 `act` chain of the access token (actor `sub`s, current actor
    /// first); empty without one.
    pub actors: Vec<String>,
    /// 3. The resource: the request path, or the policy resource `type:id`.
    pub resource: String,
    /// 4. The action: the HTTP method, or the policy action.
    pub action: String,
    /// 5. The decision and its reason code.
    pub decision: Decision,
    /// 6a. When (Unix seconds, from the guard's clock).
    pub time: i64,
    /// 6b. The correlation id (`X-Request-ID`, received or generated; echoed on the
    /// response).
    pub correlation_id: String,
    /// 7a. The risk state (`unknown` until risk signals are wired).
    pub risk_state: String,
    /// 7b. The remediation taken (`none`, `reject`, `reject; new DPoP nonce issued`,
    /// `reject; step-up required`, ...).
    pub remediation: String,
    /// Ids of the policies that determined the decision, when a policy decision point
    /// was asked (the satisfied permits, or the forbids of an explicit deny; empty for a
    /// default deny or without enforcement).
    pub policies: Vec<String>,
}

/// Receives audit events. Implementations must not block for long: they run on the
/// request path.
pub trait AuditSink: Send + Sync + std::fmt::Debug {
    /// Records one event.
    fn record(&self, event: &AuditEvent);

    /// Whether [`AuditSink::record`] would keep an event now, so that a caller on a hot
    /// path can skip building one that would be dropped. `true` unless the sink knows
    /// better.
    fn enabled(&self) -> bool {
        true
    }
}

/// Emits each event as a `tracing` event with target `aims::audit`, one field per item.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogSink;

impl AuditSink for LogSink {
    /// Whether the log filter lets `aims::audit` events at `INFO` through.
    fn enabled(&self) -> bool {
        tracing::enabled!(target: "aims::audit", tracing::Level::INFO)
    }

    fn record(&self, e: &AuditEvent) {
        tracing::info!(
            target: "aims::audit",
            agent = %e.agent,
            mechanism = e.mechanism.unwrap_or("none"),
            delegated_subject = e.delegated_subject.as_deref().unwrap_or("none"),
            actors = %e.actors.join(" "),
            resource = %e.resource,
            action = %e.action,
            decision = e.decision.as_str(),
            reason = e.decision.reason(),
            time = e.time,
            correlation_id = %e.correlation_id,
            risk_state = %e.risk_state,
            remediation = %e.remediation,
            policies = %e.policies.join(","),
            "access decision"
        );
    }
}

/// Keeps every event in memory (tests, diagnostics).
#[derive(Debug, Clone, Default)]
pub struct CollectingSink {
    events: Arc<Mutex<Vec<AuditEvent>>>,
}

impl CollectingSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events recorded so far.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl AuditSink for CollectingSink {
    fn record(&self, event: &AuditEvent) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::EnvFilter;

    fn enabled_under(filter: &str) -> bool {
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(filter))
            .with_writer(std::io::sink)
            .finish();
        tracing::subscriber::with_default(subscriber, || LogSink.enabled())
    }

    #[test]
    fn log_sink_is_enabled_exactly_when_the_filter_keeps_audit_events() {
        assert!(enabled_under("info"));
        assert!(enabled_under("warn,aims::audit=info"));
        assert!(!enabled_under("warn"));
        assert!(!enabled_under("info,aims::audit=off"));
        assert!(CollectingSink::new().enabled());
    }
}
