//! AIMS policy decision point: OpenID AuthZEN Authorization API 1.0 over Cedar.
//!
//! Layers, each usable alone:
//!
//! * [`Pdp`] (engine): a Cedar schema, Cedar policies and entity data (Cedar JSON
//!   entity format), loaded from a directory or from strings ([`PolicyBundle`]),
//!   validated against the schema as a whole, indexed by scope, and swapped atomically
//!   by [`Pdp::reload`] (a bad set is refused and the old one stays). Its API takes
//!   and returns this crate's own types ([`EvaluationRequest`], [`Decision`]…), never
//!   Cedar's.
//! * [`authzen::wire`]: the AuthZEN JSON shapes; [`authzen::http`]: the axum router.
//! * [`check`]: the policy test runner behind `aims policy check`.
//!
//! # From AuthZEN to Cedar
//!
//! * Subject and resource `type` are the Cedar entity type names, verbatim (`user`,
//!   `Agent`, `Aims::Agent`); `id` is the entity id. Action `name` becomes
//!   `Action::"<name>"` (the action type is set by [`PdpOptions::action_type`]).
//! * **Properties of subject and resource** become attributes of the request's Cedar
//!   entity when the schema declares an attribute of that name for the entity's type;
//!   their JSON value is read with the declared type (so a string becomes an entity
//!   reference or an extension value where the schema says so). Other properties are
//!   ignored. The entity's stored attributes and parents (from the entity data) are
//!   kept and the declared properties override them; an entity not in the data gets
//!   only the properties (and no parents).
//! * **Action properties** reach Cedar as the record `context.action_properties`.
//! * **Context** is passed as the Cedar context as is, except that `null` members are
//!   dropped and numbers that are not 64-bit integers become strings (Cedar has neither).
//!   The context is not validated against the schema's declared context type (the
//!   AuthZEN context is open-ended); policies are validated, so they can only read
//!   declared context attributes and should guard them with `has`.
//!
//! # Agent conventions (see `examples/agents/`)
//!
//! The subject is the agent: type `Agent` with attributes `spiffe_id`, `trust_domain`,
//! `selectors` (`Set<String>`) and `risk`. What the agent's credentials carry goes into
//! the context: `user` (the delegating user: the access token's `sub`), `act` (the RFC
//! 8693 actor chain, `{sub, act: {…}}`), `scope` (`Set<String>`),
//! `authorization_details` (RFC 9396, a set of records with `type`) with
//! `authorization_detail_types` (the set of their `type`s, for `contains` tests) and `tctx`
//! (transaction-token context). The [`audit`] module documents which of these the
//! audit record takes.
//!
//! # Flat cost
//!
//! Evaluation considers only the policies whose scope can match the request (the scope
//! index, `src/index.rs`, documents the rule): a policy scoped to another principal,
//! resource or action costs nothing. The differential test checks that indexed and full
//! evaluation agree.
#![forbid(unsafe_code)]

pub mod audit;
pub mod authzen;
pub mod check;
mod engine;
mod error;
mod index;
mod load;
mod model;

pub use engine::{ACTION_PROPERTIES_KEY, Evaluation, Pdp, PdpOptions};
pub use error::{Location, PdpError};
pub use load::{PolicyBundle, PolicySource};
pub use model::{
    Action, Decision, EntityRef, EvaluationRequest, Resource, SearchPage, SearchQuery, Subject,
};
