//! Checking the channels of chat and push services (`type = "telegram"`, `"matrix"`,
//! `"gotify"`, `"pushover"`, `"apprise"`): their addresses, and their tokens read from
//! a file or the environment, never from the config itself.

use std::path::Path;

use super::check::{Checker, DEFAULT_POSTS_IN_FLIGHT};
use super::raw::{RawApprise, RawChatId, RawGotify, RawMatrix, RawPushover, RawTelegram};
use super::{ConfigError, KeyPath, Secret, Service, Transport};

/// How a channel gathers and paces its messages, as written.
pub(super) struct Pacing {
    pub digest: Option<String>,
    pub max_per_minute: Option<u32>,
    pub max_in_flight: usize,
    pub quiet_hours: Option<String>,
}

impl Pacing {
    fn new(
        digest: Option<String>,
        max_per_minute: Option<u32>,
        max_in_flight: Option<usize>,
        quiet_hours: Option<String>,
    ) -> Pacing {
        Pacing {
            digest,
            max_per_minute,
            max_in_flight: max_in_flight.unwrap_or(DEFAULT_POSTS_IN_FLIGHT),
            quiet_hours,
        }
    }
}

const TELEGRAM_API: &str = "https://api.telegram.org";
const PUSHOVER_API: &str = "https://api.pushover.net";

impl Checker<'_> {
    pub(super) fn telegram(
        &self,
        key: KeyPath,
        raw: RawTelegram,
        base: &Path,
    ) -> Result<(Transport, Pacing), ConfigError> {
        let token = self.token(
            &key,
            "token",
            raw.token_file.as_deref(),
            raw.token_env,
            base,
        )?;
        let chat_id = match raw.chat_id {
            RawChatId::Number(n) => n.to_string(),
            RawChatId::Name(name) if !name.trim().is_empty() => name,
            RawChatId::Name(_) => {
                return Err(self.invalid(
                    key.key("chat_id"),
                    "give the chat's number or the channel's @name",
                ));
            }
        };
        let api_url = self.address(key.key("api_url"), raw.api_url.as_deref(), TELEGRAM_API)?;
        let service = Service::Telegram {
            api_url,
            token,
            chat_id,
        };
        let pacing = Pacing::new(
            raw.digest,
            raw.max_per_minute,
            raw.max_in_flight,
            raw.quiet_hours,
        );
        Ok((Transport::Service(service), pacing))
    }

    pub(super) fn matrix(
        &self,
        key: KeyPath,
        raw: RawMatrix,
        base: &Path,
    ) -> Result<(Transport, Pacing), ConfigError> {
        let access_token = self.token(
            &key,
            "access_token",
            raw.access_token_file.as_deref(),
            raw.access_token_env,
            base,
        )?;
        let room_id = raw.room_id;
        if !room_id.starts_with('!') || !room_id.contains(':') {
            return Err(self.invalid(
                key.key("room_id"),
                format!(
                    "{room_id:?} is not a room id; it looks like \"!abc123:example.org\" \
                     (the room's settings, Advanced)"
                ),
            ));
        }
        let homeserver = self.address(key.key("homeserver"), Some(&raw.homeserver), "")?;
        let service = Service::Matrix {
            homeserver,
            room_id,
            access_token,
        };
        let pacing = Pacing::new(
            raw.digest,
            raw.max_per_minute,
            raw.max_in_flight,
            raw.quiet_hours,
        );
        Ok((Transport::Service(service), pacing))
    }

    pub(super) fn gotify(
        &self,
        key: KeyPath,
        raw: RawGotify,
        base: &Path,
    ) -> Result<(Transport, Pacing), ConfigError> {
        let token = self.token(
            &key,
            "token",
            raw.token_file.as_deref(),
            raw.token_env,
            base,
        )?;
        let url = self.address(key.key("url"), Some(&raw.url), "")?;
        let pacing = Pacing::new(
            raw.digest,
            raw.max_per_minute,
            raw.max_in_flight,
            raw.quiet_hours,
        );
        Ok((Transport::Service(Service::Gotify { url, token }), pacing))
    }

    pub(super) fn pushover(
        &self,
        key: KeyPath,
        raw: RawPushover,
        base: &Path,
    ) -> Result<(Transport, Pacing), ConfigError> {
        let token = self.token(
            &key,
            "token",
            raw.token_file.as_deref(),
            raw.token_env,
            base,
        )?;
        if raw.user.trim().is_empty() {
            return Err(self.invalid(key.key("user"), "give the user or group key"));
        }
        let api_url = self.address(key.key("api_url"), raw.api_url.as_deref(), PUSHOVER_API)?;
        let service = Service::Pushover {
            api_url,
            token,
            user: raw.user,
        };
        let pacing = Pacing::new(
            raw.digest,
            raw.max_per_minute,
            raw.max_in_flight,
            raw.quiet_hours,
        );
        Ok((Transport::Service(service), pacing))
    }

    pub(super) fn apprise(
        &self,
        key: KeyPath,
        raw: RawApprise,
        base: &Path,
    ) -> Result<(Transport, Pacing), ConfigError> {
        let url = self.address(key.clone().key("url"), Some(&raw.url), "")?;
        let urls = raw
            .urls
            .map(|u| self.value_of(key.clone().key("urls"), &u, base).map(Secret))
            .transpose()?;
        let service = Service::Apprise {
            url,
            urls,
            tag: raw.tag,
        };
        let pacing = Pacing::new(
            raw.digest,
            raw.max_per_minute,
            raw.max_in_flight,
            raw.quiet_hours,
        );
        Ok((Transport::Service(service), pacing))
    }

    /// A service's token, from `<name>_file` or `<name>_env` (one of them).
    fn token(
        &self,
        key: &KeyPath,
        name: &str,
        file: Option<&Path>,
        env: Option<String>,
        base: &Path,
    ) -> Result<Secret, ConfigError> {
        let (file_key, env_key) = (format!("{name}_file"), format!("{name}_env"));
        self.read_secret(
            key.clone(),
            (&file_key, file),
            (&env_key, env.as_deref()),
            base,
        )?
        .ok_or_else(|| {
            self.invalid(
                key.clone().key(env_key.clone()),
                format!("set {env_key} or {file_key}: the token stays out of the config"),
            )
        })
    }

    /// An http(s) address as written, else `default` (none when empty).
    fn address(
        &self,
        key: KeyPath,
        written: Option<&str>,
        default: &str,
    ) -> Result<url::Url, ConfigError> {
        let text = written.unwrap_or(default);
        url::Url::parse(text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| self.invalid(key, format!("{text:?} is not an http(s) URL")))
    }
}
