//! `type = "matrix"`: a message into a Matrix room, sent as the access token's user.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::json;

use super::{Key, Kind, Outgoing, Settings};
use crate::model::Secret;
use crate::notify::DeliveryError;
use crate::notify::message::{ServiceRequest, encoded, html, joined, plain};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    pub homeserver: url::Url,
    pub room_id: String,
    pub access_token: Secret,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    homeserver: String,
    room_id: String,
    access_token_env: Option<String>,
    access_token_file: Option<PathBuf>,
}

impl Kind for Matrix {
    const NAME: &'static str = "matrix";
    type Raw = Raw;

    fn check<S: Settings>(raw: Raw, settings: &S) -> Result<Matrix, S::Error> {
        let access_token = settings.token(
            "access_token",
            raw.access_token_file.as_deref(),
            raw.access_token_env.as_deref(),
        )?;
        let room_id = raw.room_id;
        if !room_id.starts_with('!') || !room_id.contains(':') {
            return Err(settings.invalid(
                &[Key::Name("room_id")],
                format!(
                    "{room_id:?} is not a room id; it looks like \"!abc123:example.org\" \
                     (the room's settings, Advanced)"
                ),
            ));
        }
        let homeserver = settings.address("homeserver", Some(&raw.homeserver), "")?;
        Ok(Matrix {
            homeserver,
            room_id,
            access_token,
        })
    }

    fn describe(&self) -> String {
        format!("matrix room {} on {}", self.room_id, self.homeserver)
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<String, DeliveryError> {
        out.send_request(Self::NAME, self.request(out)).await
    }
}

impl Matrix {
    /// A PUT whose transaction id is the message's webhook id, so a retry is not
    /// posted twice.
    fn request(&self, out: &Outgoing<'_>) -> Result<ServiceRequest, String> {
        let post = out.post();
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
            encoded(&self.room_id),
            encoded(&out.webhook_id())
        );
        let body = json!({
            "msgtype": "m.text",
            "body": plain(&post),
            "format": "org.matrix.custom.html",
            "formatted_body": html(&post, "<br>", usize::MAX),
        });
        Ok(ServiceRequest {
            method: "PUT",
            headers: vec![(
                "Authorization".into(),
                Secret::new(format!("Bearer {}", self.access_token.expose())),
            )],
            ..ServiceRequest::post(joined(&self.homeserver, &path)?, &self.homeserver, body)
        })
    }
}
