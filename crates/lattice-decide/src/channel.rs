//! Messaging channels and per-channel values (consent, caps, send-time profiles).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A channel an action is sent on and consent is recorded for (`lattice_catalog::CHANNELS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    Push,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Push];

    /// `"email"`, `"sms"` or `"push"`.
    pub fn parse(name: &str) -> Option<Channel> {
        match name {
            "email" => Some(Channel::Email),
            "sms" => Some(Channel::Sms),
            "push" => Some(Channel::Push),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Push => "push",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value per channel, e.g. consent (`PerChannel<bool>`) or send-time profiles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerChannel<T> {
    pub email: T,
    pub sms: T,
    pub push: T,
}

impl<T> PerChannel<T> {
    /// The same value on every channel.
    pub fn all(value: T) -> Self
    where
        T: Clone,
    {
        PerChannel {
            email: value.clone(),
            sms: value.clone(),
            push: value,
        }
    }

    pub fn get(&self, channel: Channel) -> &T {
        match channel {
            Channel::Email => &self.email,
            Channel::Sms => &self.sms,
            Channel::Push => &self.push,
        }
    }

    pub fn get_mut(&mut self, channel: Channel) -> &mut T {
        match channel {
            Channel::Email => &mut self.email,
            Channel::Sms => &mut self.sms,
            Channel::Push => &mut self.push,
        }
    }
}
