//! `:serialized:` payloads of the `data` member: base64 cloudpickles, decoded inert.
//!
//! SB3 stores every attribute that `json.dumps` refuses as
//! `{":type:": str(type(x)), ":serialized:": base64(cloudpickle.dumps(x)), ...}`. The payload
//! is decoded by `pth-reader`'s pickle machine in lenient mode: globals stay names and calls
//! stay records, so a schedule, a code object or a payload naming `os.system` is data to look
//! at, never something that runs.

use base64::Engine as _;
use pth_reader::{Options, Pickle, Value};

use crate::names::GlobalName;
use crate::{Error, ErrorKind, Result};

/// One decoded `:serialized:` value of `data`: its `:type:` string and the inert pickle.
///
/// ```
/// # fn main() -> Result<(), sb3_format::Error> {
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/sb3/ppo_cartpole.zip");
/// let model = sb3_format::Model::open(path, &pth_reader::Options::default())?;
/// let data = model.data().expect("a data member");
/// let schedule = data.payload("lr_schedule").expect("a serialized schedule");
/// assert_eq!(schedule.type_name(), Some("<class 'stable_baselines3.common.utils.FloatSchedule'>"));
/// // The schedule object is an inert record of what cloudpickle would have called.
/// let class = schedule.root().as_object().and_then(|o| o.instance_class());
/// assert_eq!(class, Some(("stable_baselines3.common.utils", "FloatSchedule")));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Payload {
    type_name: Option<String>,
    pickle: Pickle,
}

impl Payload {
    /// Decodes base64 text holding a pickle, in lenient mode with `options`' limits.
    ///
    /// `member` and `key` name where the payload came from, for errors.
    pub(crate) fn decode(
        base64: &str,
        type_name: Option<&str>,
        options: &Options,
        member: &str,
        key: &str,
    ) -> Result<Payload> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(base64.trim())
            .map_err(|e| {
                Error::from(ErrorKind::Base64 {
                    member: member.to_owned(),
                    key: key.to_owned(),
                    reason: e.to_string(),
                })
            })?;
        let options = options.clone().lenient(true);
        let pickle = Pickle::parse_named(&bytes, &format!("{member}[{key}]"), &options).map_err(|source| {
            ErrorKind::Payload {
                member: member.to_owned(),
                key: key.to_owned(),
                source,
            }
        })?;
        Ok(Payload {
            type_name: type_name.map(str::to_owned),
            pickle,
        })
    }

    /// The `:type:` string SB3 wrote (`"<class 'gymnasium.spaces.box.Box'>"`), if any.
    pub fn type_name(&self) -> Option<&str> {
        self.type_name.as_deref()
    }

    /// The decoded value.
    pub fn root(&self) -> Value<'_> {
        self.pickle.root()
    }

    /// The decoded pickle.
    pub fn pickle(&self) -> &Pickle {
        &self.pickle
    }

    /// The global the payload names, when it is just a reference (a class such as
    /// `policy_class`, or a function).
    pub fn global(&self) -> Option<GlobalName> {
        let (module, name) = self.root().as_global()?;
        Some(GlobalName::new(module, name))
    }
}
