//! The event catalog: every event name a hook may subscribe to, in Logto's order.
//!
//! An event is parsed once, at the edge (hook bodies, ingest bodies), into [`HookEvent`];
//! everything behind the edge can rely on the name being one of the catalog's.

use serde::{Serialize, Serializer};
use std::fmt;

/// Logto sorts its events into three kinds; the kind decides the payload's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EventKind {
    /// `Post*`: fired when an end user finishes an interaction (sign-in, registration, ...).
    Interaction,
    /// `<Schema>.<Mutation>`: fired when the Management API changed data.
    Data,
    /// Fired when something went wrong on purpose (lockout, rate limit).
    Exception,
    /// `Pre*` (beyond Logto): called synchronously inside an interaction, before anything is
    /// written, and able to veto it. Never queued.
    Blocking,
    /// hookline's own operational events (beyond Logto): about its hooks and deliveries
    /// (`Hook.Disabled`, `Delivery.Exhausted`). Fired by hookline only, never published
    /// through the ingest API; subscribable like any other.
    Operational,
}

/// The registrable events in the order `@logto/schemas` lists them (`hookEvents`), without the
/// dev-feature `TrustedDevice.*` events.
const CATALOG: &[(&str, EventKind)] = &[
    ("PostRegister", EventKind::Interaction),
    ("PostSignIn", EventKind::Interaction),
    ("PostSignInAdaptiveMfaTriggered", EventKind::Interaction),
    ("PostResetPassword", EventKind::Interaction),
    ("User.Created", EventKind::Data),
    ("User.Deleted", EventKind::Data),
    ("User.Data.Updated", EventKind::Data),
    ("User.SuspensionStatus.Updated", EventKind::Data),
    ("Role.Created", EventKind::Data),
    ("Role.Deleted", EventKind::Data),
    ("Role.Data.Updated", EventKind::Data),
    ("Role.Scopes.Updated", EventKind::Data),
    ("Scope.Created", EventKind::Data),
    ("Scope.Deleted", EventKind::Data),
    ("Scope.Data.Updated", EventKind::Data),
    ("Organization.Created", EventKind::Data),
    ("Organization.Deleted", EventKind::Data),
    ("Organization.Data.Updated", EventKind::Data),
    ("Organization.Membership.Updated", EventKind::Data),
    ("OrganizationRole.Created", EventKind::Data),
    ("OrganizationRole.Deleted", EventKind::Data),
    ("OrganizationRole.Data.Updated", EventKind::Data),
    ("OrganizationRole.Scopes.Updated", EventKind::Data),
    ("OrganizationScope.Created", EventKind::Data),
    ("OrganizationScope.Deleted", EventKind::Data),
    ("OrganizationScope.Data.Updated", EventKind::Data),
    ("Identifier.Lockout", EventKind::Exception),
    ("Message.RateLimited", EventKind::Exception),
    ("Grant.LimitExceeded", EventKind::Exception),
    // hookline's blocking events, after Logto's list so that Logto's indices stay put.
    ("PreRegister", EventKind::Blocking),
    ("PreSignIn", EventKind::Blocking),
    ("PreResetPassword", EventKind::Blocking),
    // hookline's operational events, after those.
    ("Hook.Disabled", EventKind::Operational),
    ("Delivery.Exhausted", EventKind::Operational),
];

/// One catalog event. A `Copy` index into [`CATALOG`], so it costs nothing to pass around
/// and can never hold a name outside the catalog.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HookEvent(u8);

#[derive(Debug, thiserror::Error)]
#[error("'{0}' is not a hook event; GET /api/hook-events lists them")]
pub struct UnknownEvent(pub String);

impl HookEvent {
    // The events hookline fires itself, by name (checked against the catalog by a test).
    pub const POST_REGISTER: HookEvent = HookEvent(0);
    pub const POST_SIGN_IN: HookEvent = HookEvent(1);
    pub const POST_RESET_PASSWORD: HookEvent = HookEvent(3);
    pub const IDENTIFIER_LOCKOUT: HookEvent = HookEvent(26);
    pub const MESSAGE_RATE_LIMITED: HookEvent = HookEvent(27);
    pub const PRE_REGISTER: HookEvent = HookEvent(29);
    pub const PRE_SIGN_IN: HookEvent = HookEvent(30);
    pub const PRE_RESET_PASSWORD: HookEvent = HookEvent(31);
    pub const HOOK_DISABLED: HookEvent = HookEvent(32);
    pub const DELIVERY_EXHAUSTED: HookEvent = HookEvent(33);
    pub const USER_CREATED: HookEvent = HookEvent(4);
    pub const USER_DELETED: HookEvent = HookEvent(5);
    pub const USER_DATA_UPDATED: HookEvent = HookEvent(6);
    pub const USER_SUSPENSION_STATUS_UPDATED: HookEvent = HookEvent(7);
    pub const ROLE_CREATED: HookEvent = HookEvent(8);
    pub const ROLE_DELETED: HookEvent = HookEvent(9);
    pub const ROLE_DATA_UPDATED: HookEvent = HookEvent(10);
    pub const ROLE_SCOPES_UPDATED: HookEvent = HookEvent(11);
    pub const SCOPE_CREATED: HookEvent = HookEvent(12);
    pub const SCOPE_DELETED: HookEvent = HookEvent(13);
    pub const SCOPE_DATA_UPDATED: HookEvent = HookEvent(14);
    pub const ORGANIZATION_CREATED: HookEvent = HookEvent(15);
    pub const ORGANIZATION_DELETED: HookEvent = HookEvent(16);
    pub const ORGANIZATION_DATA_UPDATED: HookEvent = HookEvent(17);
    pub const ORGANIZATION_MEMBERSHIP_UPDATED: HookEvent = HookEvent(18);
    pub const ORGANIZATION_ROLE_CREATED: HookEvent = HookEvent(19);
    pub const ORGANIZATION_ROLE_DELETED: HookEvent = HookEvent(20);
    pub const ORGANIZATION_ROLE_DATA_UPDATED: HookEvent = HookEvent(21);
    pub const ORGANIZATION_ROLE_SCOPES_UPDATED: HookEvent = HookEvent(22);
    pub const ORGANIZATION_SCOPE_CREATED: HookEvent = HookEvent(23);
    pub const ORGANIZATION_SCOPE_DELETED: HookEvent = HookEvent(24);
    pub const ORGANIZATION_SCOPE_DATA_UPDATED: HookEvent = HookEvent(25);

    pub fn parse(name: &str) -> Result<Self, UnknownEvent> {
        CATALOG
            .iter()
            .position(|(n, _)| *n == name)
            .map(|i| HookEvent(i as u8))
            .ok_or_else(|| UnknownEvent(name.chars().take(100).collect()))
    }

    /// Its position in the catalog (0 ≤ index < `HookEvent::all().count()`), for tables
    /// indexed by event.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    pub fn name(self) -> &'static str {
        CATALOG[self.0 as usize].0
    }

    pub fn kind(self) -> EventKind {
        CATALOG[self.0 as usize].1
    }

    /// The group Logto's console shows the event in when a hook is edited ("User",
    /// "Organization", "Role and permission", "Interaction", "Exception"), and hookline's
    /// own two ("Blocking", "hookline").
    pub fn group(self) -> &'static str {
        match self.kind() {
            EventKind::Interaction => "Interaction",
            EventKind::Exception => "Exception",
            EventKind::Blocking => "Blocking",
            EventKind::Operational => "hookline",
            EventKind::Data if self.name().starts_with("User.") => "User",
            EventKind::Data if self.name().starts_with("Organization") => "Organization",
            EventKind::Data => "Role and permission",
        }
    }

    /// Every event, in catalog order.
    pub fn all() -> impl Iterator<Item = HookEvent> {
        (0..CATALOG.len()).map(|i| HookEvent(i as u8))
    }
}

impl fmt::Debug for HookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for HookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for HookEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_fall_into_logtos_console_groups() {
        let group = |n: &str| HookEvent::parse(n).unwrap().group();
        assert_eq!(group("User.Data.Updated"), "User");
        assert_eq!(group("OrganizationRole.Created"), "Organization");
        assert_eq!(group("Organization.Membership.Updated"), "Organization");
        assert_eq!(group("Scope.Deleted"), "Role and permission");
        assert_eq!(group("Role.Scopes.Updated"), "Role and permission");
        assert_eq!(group("PostSignIn"), "Interaction");
        assert_eq!(group("Identifier.Lockout"), "Exception");
        assert_eq!(group("PreSignIn"), "Blocking");
        assert_eq!(group("Hook.Disabled"), "hookline");
    }

    #[test]
    fn catalog_round_trips_and_keeps_logto_order() {
        let names: Vec<_> = HookEvent::all().map(HookEvent::name).collect();
        // Logto's 29, then hookline's three blocking events and two operational ones.
        assert_eq!(names.len(), 34);
        assert_eq!(names[0], "PostRegister");
        assert_eq!(names[28], "Grant.LimitExceeded");
        assert_eq!(
            names[29..],
            [
                "PreRegister",
                "PreSignIn",
                "PreResetPassword",
                "Hook.Disabled",
                "Delivery.Exhausted"
            ]
        );
        for e in HookEvent::all() {
            assert_eq!(HookEvent::parse(e.name()).unwrap(), e);
        }
        assert_eq!(
            HookEvent::parse("PostSignIn").unwrap().kind(),
            EventKind::Interaction
        );
        assert_eq!(
            HookEvent::parse("Identifier.Lockout").unwrap().kind(),
            EventKind::Exception
        );
        assert!(HookEvent::parse("postsignin").is_err());
        assert!(HookEvent::parse("TrustedDevice.Created").is_err());
    }

    #[test]
    fn the_named_events_are_their_catalog_entries() {
        for (event, name) in [
            (HookEvent::USER_CREATED, "User.Created"),
            (HookEvent::USER_DELETED, "User.Deleted"),
            (HookEvent::USER_DATA_UPDATED, "User.Data.Updated"),
            (
                HookEvent::USER_SUSPENSION_STATUS_UPDATED,
                "User.SuspensionStatus.Updated",
            ),
            (HookEvent::ROLE_CREATED, "Role.Created"),
            (HookEvent::ROLE_DELETED, "Role.Deleted"),
            (HookEvent::ROLE_DATA_UPDATED, "Role.Data.Updated"),
            (HookEvent::ROLE_SCOPES_UPDATED, "Role.Scopes.Updated"),
            (HookEvent::SCOPE_CREATED, "Scope.Created"),
            (HookEvent::SCOPE_DELETED, "Scope.Deleted"),
            (HookEvent::SCOPE_DATA_UPDATED, "Scope.Data.Updated"),
            (HookEvent::ORGANIZATION_CREATED, "Organization.Created"),
            (HookEvent::ORGANIZATION_DELETED, "Organization.Deleted"),
            (
                HookEvent::ORGANIZATION_DATA_UPDATED,
                "Organization.Data.Updated",
            ),
            (
                HookEvent::ORGANIZATION_MEMBERSHIP_UPDATED,
                "Organization.Membership.Updated",
            ),
            (
                HookEvent::ORGANIZATION_ROLE_CREATED,
                "OrganizationRole.Created",
            ),
            (
                HookEvent::ORGANIZATION_ROLE_DELETED,
                "OrganizationRole.Deleted",
            ),
            (
                HookEvent::ORGANIZATION_ROLE_DATA_UPDATED,
                "OrganizationRole.Data.Updated",
            ),
            (
                HookEvent::ORGANIZATION_ROLE_SCOPES_UPDATED,
                "OrganizationRole.Scopes.Updated",
            ),
            (
                HookEvent::ORGANIZATION_SCOPE_CREATED,
                "OrganizationScope.Created",
            ),
            (
                HookEvent::ORGANIZATION_SCOPE_DELETED,
                "OrganizationScope.Deleted",
            ),
            (
                HookEvent::ORGANIZATION_SCOPE_DATA_UPDATED,
                "OrganizationScope.Data.Updated",
            ),
        ] {
            assert_eq!(event.name(), name);
            assert_eq!(event.kind(), EventKind::Data);
        }
        for (event, name, kind) in [
            (
                HookEvent::HOOK_DISABLED,
                "Hook.Disabled",
                EventKind::Operational,
            ),
            (
                HookEvent::DELIVERY_EXHAUSTED,
                "Delivery.Exhausted",
                EventKind::Operational,
            ),
            (
                HookEvent::POST_REGISTER,
                "PostRegister",
                EventKind::Interaction,
            ),
            (
                HookEvent::POST_SIGN_IN,
                "PostSignIn",
                EventKind::Interaction,
            ),
            (
                HookEvent::POST_RESET_PASSWORD,
                "PostResetPassword",
                EventKind::Interaction,
            ),
            (
                HookEvent::IDENTIFIER_LOCKOUT,
                "Identifier.Lockout",
                EventKind::Exception,
            ),
            (
                HookEvent::MESSAGE_RATE_LIMITED,
                "Message.RateLimited",
                EventKind::Exception,
            ),
            (HookEvent::PRE_REGISTER, "PreRegister", EventKind::Blocking),
            (HookEvent::PRE_SIGN_IN, "PreSignIn", EventKind::Blocking),
            (
                HookEvent::PRE_RESET_PASSWORD,
                "PreResetPassword",
                EventKind::Blocking,
            ),
        ] {
            assert_eq!((event.name(), event.kind()), (name, kind));
        }
    }
}
