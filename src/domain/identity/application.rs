//! Applications: the backends that call the interaction API on behalf of end users. Shaped
//! like Logto's (`id, name, description, type`), with a secret shown once at creation.

use super::{
    check_optional_text, check_text, nullable, InputResult, MAX_DESCRIPTION_LENGTH, MAX_NAME_LENGTH,
};
use crate::domain::hook::TENANT_ID;
use serde::{Deserialize, Serialize};

/// Length of a generated application secret (letters and digits).
pub const SECRET_LENGTH: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplicationType {
    Native,
    #[serde(rename = "SPA")]
    Spa,
    Traditional,
    MachineToMachine,
    Protected,
    #[serde(rename = "SAML")]
    Saml,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub tenant_id: String,
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub kind: ApplicationType,
    pub created_at: i64,
}

/// `POST /api/applications`. Fields Logto acts on that hookline does not keep (OIDC metadata,
/// …) are refused with a 400 naming them, not dropped ([`Unsupported`]).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewApplicationInput {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ApplicationType,
    pub description: Option<String>,
    #[serde(flatten)]
    pub unsupported: Unsupported,
}

/// What Logto's application guards act on and hookline keeps nothing of.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unsupported {
    oidc_client_metadata: Option<serde_json::Value>,
    custom_client_metadata: Option<serde_json::Value>,
    protected_app_metadata: Option<serde_json::Value>,
    custom_data: Option<serde_json::Value>,
    is_third_party: Option<serde_json::Value>,
    app_level_access_control_enabled: Option<serde_json::Value>,
}

impl Unsupported {
    pub fn refuse(&self) -> InputResult<()> {
        super::refuse_unsupported(&[
            ("oidcClientMetadata", self.oidc_client_metadata.is_some()),
            (
                "customClientMetadata",
                self.custom_client_metadata.is_some(),
            ),
            (
                "protectedAppMetadata",
                self.protected_app_metadata.is_some(),
            ),
            ("customData", self.custom_data.is_some()),
            ("isThirdParty", self.is_third_party.is_some()),
            (
                "appLevelAccessControlEnabled",
                self.app_level_access_control_enabled.is_some(),
            ),
        ])
    }
}

impl NewApplicationInput {
    pub fn parse(self, id: String, now: i64) -> InputResult<Application> {
        self.unsupported.refuse()?;
        check_text("name", &self.name, MAX_NAME_LENGTH)?;
        check_optional_text(
            "description",
            self.description.as_deref(),
            MAX_DESCRIPTION_LENGTH,
        )?;
        Ok(Application {
            tenant_id: TENANT_ID.into(),
            id,
            name: self.name,
            description: self.description,
            kind: self.kind,
            created_at: now,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationPatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    #[serde(flatten)]
    pub unsupported: Unsupported,
}

impl ApplicationPatch {
    pub fn apply(&self, mut app: Application) -> InputResult<Application> {
        self.unsupported.refuse()?;
        if let Some(n) = &self.name {
            check_text("name", n, MAX_NAME_LENGTH)?;
            app.name.clone_from(n);
        }
        if let Some(d) = &self.description {
            check_optional_text("description", d.as_deref(), MAX_DESCRIPTION_LENGTH)?;
            app.description.clone_from(d);
        }
        Ok(app)
    }
}
