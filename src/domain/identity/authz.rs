//! Authorization objects: API resources and their scopes (permissions), roles, organizations,
//! organization roles and organization scopes. Shapes and key order follow Logto's.

use super::{
    check_ids, check_optional_text, check_text, nullable, InputError, InputResult,
    MAX_DESCRIPTION_LENGTH, MAX_NAME_LENGTH, MAX_URL_LENGTH,
};
use crate::domain::hook::TENANT_ID;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub tenant_id: String,
    pub id: String,
    pub name: String,
    pub indicator: String,
    pub is_default: bool,
    pub access_token_ttl: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    pub tenant_id: String,
    pub id: String,
    pub resource_id: String,
    pub name: String,
    pub description: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub tenant_id: String,
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(rename = "type")]
    pub kind: RoleType,
    pub is_default: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum RoleType {
    User,
    MachineToMachine,
}

/// An organization, with Logto's fields in Logto's order (`organizations` table).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub tenant_id: String,
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub custom_data: Map<String, Value>,
    pub is_mfa_required: bool,
    #[serde(default = "yes")]
    pub is_trusted_device_allowed: bool,
    /// Branding colours (`{primaryColor?, isDarkModeEnabled?, darkPrimaryColor?}`), kept as
    /// given.
    #[serde(default)]
    pub color: Map<String, Value>,
    /// Logos (`{logoUrl?, darkLogoUrl?, favicon?, darkFavicon?}`), kept as given.
    #[serde(default)]
    pub branding: Map<String, Value>,
    #[serde(default)]
    pub custom_css: Option<String>,
    pub created_at: i64,
}

fn yes() -> bool {
    true
}

/// Longest `customCss` taken.
pub const MAX_CSS_BYTES: usize = 64 * 1024;

/// An organization role or an organization scope: both are a name and a description in the
/// organization template (a role also has a type).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationRole {
    pub tenant_id: String,
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub kind: RoleType,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationScope {
    pub tenant_id: String,
    pub id: String,
    pub name: String,
    pub description: Option<String>,
}

/// Default access token lifetime of a resource, in seconds (Logto's).
pub const DEFAULT_ACCESS_TOKEN_TTL: i64 = 3600;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewResourceInput {
    pub name: String,
    pub indicator: String,
    pub access_token_ttl: Option<i64>,
    /// Logto's default resource (the audience of tokens asked without one): hookline issues no
    /// tokens, so it is refused rather than dropped.
    pub is_default: Option<bool>,
}

impl NewResourceInput {
    pub fn parse(self, id: String) -> InputResult<Resource> {
        super::refuse_unsupported(&[("isDefault", self.is_default.is_some())])?;
        check_text("name", &self.name, MAX_NAME_LENGTH)?;
        check_indicator(&self.indicator)?;
        let ttl = check_ttl(self.access_token_ttl)?.unwrap_or(DEFAULT_ACCESS_TOKEN_TTL);
        Ok(Resource {
            tenant_id: TENANT_ID.into(),
            id,
            name: self.name,
            indicator: self.indicator,
            is_default: false,
            access_token_ttl: ttl,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourcePatch {
    pub name: Option<String>,
    pub access_token_ttl: Option<i64>,
}

impl ResourcePatch {
    pub fn apply(&self, mut r: Resource) -> InputResult<Resource> {
        if let Some(name) = &self.name {
            check_text("name", name, MAX_NAME_LENGTH)?;
            r.name.clone_from(name);
        }
        if let Some(ttl) = check_ttl(self.access_token_ttl)? {
            r.access_token_ttl = ttl;
        }
        Ok(r)
    }
}

fn check_ttl(ttl: Option<i64>) -> InputResult<Option<i64>> {
    match ttl {
        Some(t) if !(1..=86_400 * 30).contains(&t) => Err(InputError::new(
            "`accessTokenTtl` must be 1 to 2592000 seconds",
        )),
        t => Ok(t),
    }
}

/// A resource indicator is an absolute URI (RFC 8707), e.g. `https://api.example.com`.
fn check_indicator(indicator: &str) -> InputResult<()> {
    check_text("indicator", indicator, MAX_URL_LENGTH)?;
    match url::Url::parse(indicator) {
        Ok(u) if !u.cannot_be_a_base() && u.fragment().is_none() => Ok(()),
        _ => Err(InputError::new(
            "`indicator` must be an absolute URI without a fragment",
        )),
    }
}

/// The body of a new scope, organization scope or organization role: a name and an optional
/// description.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedInput {
    pub name: String,
    pub description: Option<String>,
}

impl NamedInput {
    pub fn check(&self) -> InputResult<()> {
        check_text("name", &self.name, MAX_NAME_LENGTH)?;
        check_optional_text(
            "description",
            self.description.as_deref(),
            MAX_DESCRIPTION_LENGTH,
        )
    }
}

/// Longest scope name (Logto's `scopes.name` is `varchar(256)`).
pub const MAX_SCOPE_NAME_LENGTH: usize = 256;

/// A resource scope's name: 1 to 256 characters, no whitespace.
pub fn check_scope_name(name: &str) -> InputResult<()> {
    check_text("name", name, MAX_SCOPE_NAME_LENGTH)?;
    if name.chars().any(char::is_whitespace) {
        return Err(InputError::with_code(
            "scope.name_with_space",
            "A scope name must not contain whitespace.",
        ));
    }
    Ok(())
}

/// The patch of a scope, organization scope or organization role.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedPatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
}

impl NamedPatch {
    pub fn check(&self) -> InputResult<()> {
        if let Some(n) = &self.name {
            check_text("name", n, MAX_NAME_LENGTH)?;
        }
        check_optional_text(
            "description",
            self.description.clone().flatten().as_deref(),
            MAX_DESCRIPTION_LENGTH,
        )
    }

    /// Applies the patch to a name and description.
    pub fn apply_to(&self, name: &mut String, description: &mut Option<String>) {
        if let Some(n) = &self.name {
            name.clone_from(n);
        }
        if let Some(d) = &self.description {
            description.clone_from(d);
        }
    }
}

impl NamedInput {
    /// A resource's scope: a name of up to 256 characters without whitespace (400
    /// `scope.name_with_space`), as Logto's scope guard has it.
    pub fn into_scope(self, id: String, resource_id: String, now: i64) -> InputResult<Scope> {
        check_scope_name(&self.name)?;
        check_optional_text(
            "description",
            self.description.as_deref(),
            MAX_DESCRIPTION_LENGTH,
        )?;
        Ok(Scope {
            tenant_id: TENANT_ID.into(),
            id,
            resource_id,
            name: self.name,
            description: self.description,
            created_at: now,
        })
    }

    pub fn into_organization_scope(self, id: String) -> InputResult<OrganizationScope> {
        self.check()?;
        Ok(OrganizationScope {
            tenant_id: TENANT_ID.into(),
            id,
            name: self.name,
            description: self.description,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewRoleInput {
    pub name: String,
    pub description: String,
    #[serde(rename = "type")]
    pub kind: Option<RoleType>,
    pub is_default: Option<bool>,
    pub scope_ids: Option<Vec<String>>,
}

impl NewRoleInput {
    /// The role and the scopes it starts with (`None`: no `scopeIds` given).
    pub fn parse(self, id: String) -> InputResult<(Role, Option<Vec<String>>)> {
        check_text("name", &self.name, MAX_NAME_LENGTH)?;
        check_text("description", &self.description, MAX_DESCRIPTION_LENGTH)?;
        let scope_ids = self
            .scope_ids
            .map(|ids| check_ids("scopeIds", ids))
            .transpose()?;
        Ok((
            Role {
                tenant_id: TENANT_ID.into(),
                id,
                name: self.name,
                description: self.description,
                kind: self.kind.unwrap_or(RoleType::User),
                is_default: self.is_default.unwrap_or(false),
            },
            scope_ids,
        ))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolePatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub is_default: Option<bool>,
}

impl RolePatch {
    pub fn check(&self) -> InputResult<()> {
        if let Some(n) = &self.name {
            check_text("name", n, MAX_NAME_LENGTH)?;
        }
        if let Some(d) = &self.description {
            check_text("description", d, MAX_DESCRIPTION_LENGTH)?;
        }
        Ok(())
    }

    pub fn apply(&self, mut role: Role) -> Role {
        if let Some(n) = &self.name {
            role.name.clone_from(n);
        }
        if let Some(d) = &self.description {
            role.description.clone_from(d);
        }
        if let Some(d) = self.is_default {
            role.is_default = d;
        }
        role
    }
}

/// A body naming ids under one key, e.g. `{"scopeIds": [...]}` or `{"userIds": [...]}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdsInput {
    pub scope_ids: Option<Vec<String>>,
    pub role_ids: Option<Vec<String>>,
    pub user_ids: Option<Vec<String>>,
    pub organization_scope_ids: Option<Vec<String>>,
    pub organization_role_ids: Option<Vec<String>>,
    pub application_ids: Option<Vec<String>>,
    /// Member roles by name (Logto's `organizationRoleNames`).
    pub organization_role_names: Option<Vec<String>>,
}

impl IdsInput {
    /// The ids under `field` (camelCase, as in the body), checked; an error if absent.
    pub fn take(self, field: &'static str) -> InputResult<Vec<String>> {
        let ids = match field {
            "scopeIds" => self.scope_ids,
            "roleIds" => self.role_ids,
            "userIds" => self.user_ids,
            "organizationScopeIds" => self.organization_scope_ids,
            "organizationRoleIds" => self.organization_role_ids,
            "applicationIds" => self.application_ids,
            _ => None,
        };
        let ids = ids.ok_or_else(|| InputError::new(format!("`{field}` is required")))?;
        check_ids(field, ids)
    }

    /// A member-role body: `organizationRoleIds` and `organizationRoleNames`, both optional
    /// (Logto's guard), checked and bounded.
    pub fn member_roles(self) -> InputResult<(Vec<String>, Vec<String>)> {
        let names = self.organization_role_names.clone().unwrap_or_default();
        if names.len() > super::MAX_IDS_PER_REQUEST {
            return Err(InputError::new(format!(
                "`organizationRoleNames` may name at most {} roles",
                super::MAX_IDS_PER_REQUEST
            )));
        }
        for n in &names {
            check_text("organizationRoleNames", n, MAX_NAME_LENGTH)?;
        }
        let ids = match self.organization_role_ids {
            Some(ids) => check_ids("organizationRoleIds", ids)?,
            None => Vec::new(),
        };
        Ok((ids, names))
    }

    /// [`Self::take`] for the routes whose guard asks for a non-empty list (Logto's
    /// `.nonempty()`: adding members, scopes, roles).
    pub fn take_nonempty(self, field: &'static str) -> InputResult<Vec<String>> {
        let ids = self.take(field)?;
        if ids.is_empty() {
            return Err(InputError::new(format!(
                "`{field}` must name at least one id"
            )));
        }
        Ok(ids)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOrganizationInput {
    pub name: String,
    pub description: Option<String>,
    pub custom_data: Option<Map<String, Value>>,
    pub is_mfa_required: Option<bool>,
    pub is_trusted_device_allowed: Option<bool>,
    pub color: Option<Map<String, Value>>,
    pub branding: Option<Map<String, Value>>,
    pub custom_css: Option<String>,
}

fn check_css(css: Option<&str>) -> InputResult<()> {
    match css {
        Some(c) if c.len() > MAX_CSS_BYTES => Err(InputError::new(format!(
            "`customCss` must be at most {MAX_CSS_BYTES} bytes"
        ))),
        _ => Ok(()),
    }
}

impl NewOrganizationInput {
    pub fn parse(self, id: String, now: i64) -> InputResult<Organization> {
        check_text("name", &self.name, MAX_NAME_LENGTH)?;
        check_optional_text(
            "description",
            self.description.as_deref(),
            MAX_DESCRIPTION_LENGTH,
        )?;
        let custom_data = self.custom_data.unwrap_or_default();
        let color = self.color.unwrap_or_default();
        let branding = self.branding.unwrap_or_default();
        super::user::check_object("customData", &custom_data)?;
        super::user::check_object("color", &color)?;
        super::user::check_object("branding", &branding)?;
        check_css(self.custom_css.as_deref())?;
        Ok(Organization {
            tenant_id: TENANT_ID.into(),
            id,
            name: self.name,
            description: self.description,
            custom_data,
            is_mfa_required: self.is_mfa_required.unwrap_or(false),
            is_trusted_device_allowed: self.is_trusted_device_allowed.unwrap_or(true),
            color,
            branding,
            custom_css: self.custom_css,
            created_at: now,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationPatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    pub custom_data: Option<Map<String, Value>>,
    pub is_mfa_required: Option<bool>,
    pub is_trusted_device_allowed: Option<bool>,
    pub color: Option<Map<String, Value>>,
    pub branding: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "nullable")]
    pub custom_css: Option<Option<String>>,
}

impl OrganizationPatch {
    pub fn check(&self) -> InputResult<()> {
        NamedPatch {
            name: self.name.clone(),
            description: self.description.clone(),
        }
        .check()?;
        if let Some(c) = &self.custom_data {
            super::user::check_object("customData", c)?;
        }
        if let Some(c) = &self.color {
            super::user::check_object("color", c)?;
        }
        if let Some(b) = &self.branding {
            super::user::check_object("branding", b)?;
        }
        check_css(self.custom_css.clone().flatten().as_deref())
    }

    pub fn apply(&self, mut org: Organization) -> Organization {
        if let Some(n) = &self.name {
            org.name.clone_from(n);
        }
        if let Some(d) = &self.description {
            org.description.clone_from(d);
        }
        if let Some(c) = &self.custom_data {
            org.custom_data.clone_from(c);
        }
        if let Some(m) = self.is_mfa_required {
            org.is_mfa_required = m;
        }
        if let Some(t) = self.is_trusted_device_allowed {
            org.is_trusted_device_allowed = t;
        }
        if let Some(c) = &self.color {
            org.color.clone_from(c);
        }
        if let Some(b) = &self.branding {
            org.branding.clone_from(b);
        }
        if let Some(c) = &self.custom_css {
            org.custom_css.clone_from(c);
        }
        org
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOrganizationRoleInput {
    pub name: String,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<RoleType>,
    pub organization_scope_ids: Option<Vec<String>>,
    /// API resource scopes on an organization role: not supported by hookline.
    pub resource_scope_ids: Option<Vec<String>>,
}

impl NewOrganizationRoleInput {
    pub fn parse(self, id: String) -> InputResult<(OrganizationRole, Option<Vec<String>>)> {
        let resource_scopes = self
            .resource_scope_ids
            .as_ref()
            .is_some_and(|v| !v.is_empty());
        super::refuse_unsupported(&[("resourceScopeIds", resource_scopes)])?;
        NamedInput {
            name: self.name.clone(),
            description: self.description.clone(),
        }
        .check()?;
        let scope_ids = self
            .organization_scope_ids
            .map(|ids| check_ids("organizationScopeIds", ids))
            .transpose()?;
        Ok((
            OrganizationRole {
                tenant_id: TENANT_ID.into(),
                id,
                name: self.name,
                description: self.description,
                kind: self.kind.unwrap_or(RoleType::User),
            },
            scope_ids,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resources_need_an_absolute_indicator() {
        let ok: NewResourceInput =
            serde_json::from_value(json!({"name": "API", "indicator": "https://api.example.com"}))
                .unwrap();
        assert_eq!(ok.parse("r1".into()).unwrap().access_token_ttl, 3600);
        let bad: NewResourceInput =
            serde_json::from_value(json!({"name": "API", "indicator": "api"})).unwrap();
        assert!(bad.parse("r1".into()).is_err());
    }

    #[test]
    fn roles_take_checked_scope_ids() {
        let input: NewRoleInput = serde_json::from_value(
            json!({"name": "admin", "description": "all", "scopeIds": ["s1", "s1", "s2"]}),
        )
        .unwrap();
        let (role, scopes) = input.parse("r1".into()).unwrap();
        assert_eq!(role.kind, RoleType::User);
        assert_eq!(scopes.unwrap(), ["s1", "s2"]);
        let v = serde_json::to_value(&role).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["tenantId", "id", "name", "description", "type", "isDefault"]
        );
    }
}
