//! Applications: created with a secret (answered once, kept only as a hash), changed,
//! deleted. Logto fires no events for them, and neither does hookline.

use super::{doc, load, to_json};
use crate::domain::identity::application::{Application, ApplicationPatch};
use crate::storage::identity::{transact, IdentityError, IdentityResult, IdentityStore, Kind};
use serde_json::Value;

/// `POST /applications`: the application, with `secret` added to this one answer.
pub async fn create(
    store: &dyn IdentityStore,
    app: Application,
    secret: String,
) -> IdentityResult<Value> {
    let hash = super::interactions::secret_hash(&secret);
    let mut answer = transact(store, move |tx| {
        tx.insert(
            Kind::Application,
            &doc(&app.id, &app, vec![], None, app.created_at)?,
        )?;
        tx.set_credential(Kind::Application, &app.id, &hash)?;
        to_json(&app)
    })
    .await?;
    if let Some(obj) = answer.as_object_mut() {
        obj.insert("secret".into(), Value::String(secret));
    }
    Ok(answer)
}

/// `PATCH /applications/:id`.
pub async fn update(
    store: &dyn IdentityStore,
    id: String,
    patch: ApplicationPatch,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        let app: Application = load(tx, Kind::Application, &id)?;
        let app = patch.apply(app).map_err(IdentityError::Input)?;
        tx.update(
            Kind::Application,
            &doc(&app.id, &app, vec![], None, app.created_at)?,
        )?;
        to_json(&app)
    })
    .await
}

/// `DELETE /applications/:id`.
pub async fn delete(store: &dyn IdentityStore, id: String) -> IdentityResult<Value> {
    transact(store, move |tx| {
        if !tx.delete(Kind::Application, &id)? {
            return Err(IdentityError::not_found(Kind::Application, &id));
        }
        Ok(Value::Null)
    })
    .await
}
