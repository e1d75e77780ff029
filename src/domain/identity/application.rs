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

/// `POST /api/applications`. Fields Logto acts on that hookline does not keep (redirect URIs,
/// OIDC metadata, …) are refused with a 400 naming them, not dropped.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewApplicationInput {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ApplicationType,
    pub description: Option<String>,
}

impl NewApplicationInput {
    pub fn parse(self, id: String, now: i64) -> InputResult<Application> {
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
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationPatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
}

impl ApplicationPatch {
    pub fn apply(&self, mut app: Application) -> InputResult<Application> {
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
