//! [`Model`]: an opened SB3 model zip.

use std::path::Path;

use pth_reader::zip::{Dialect, InflateBudget, ZipArchive, ZipEntry};
use pth_reader::{Checkpoint, MappedFile, Options, SharedBytes};
use serde_json::{json, Value as Json};

use crate::data::Data;
use crate::payload::GlobalName;
use crate::policy_kwargs::PolicyKwargs;
use crate::space::Space;
use crate::system_info::{system_info_json, SystemInfo};
use crate::{Error, Result};

/// The member holding SB3's JSON.
const DATA: &str = "data";
/// The member holding the SB3 version (absent in very old files).
const VERSION: &str = "_stable_baselines3_version";
/// The member holding the system info (SB3 ≥ 1.3).
const SYSTEM_INFO: &str = "system_info.txt";
/// The extension of nested torch files.
const PTH: &str = ".pth";

/// An opened Stable-Baselines3 model zip (what `model.save(...)` writes).
///
/// Opening reads and validates every member once: the `data` JSON with its `:serialized:`
/// payloads (decoded inert: nothing is ever executed), `_stable_baselines3_version`,
/// `system_info.txt`, and every nested `.pth` (the policy, the optimizers,
/// `pytorch_variables`), each a [`Checkpoint`] over a zero-copy sub-slice of the outer file.
/// Every member is optional, as it is for SB3's loader. Errors name the member at fault.
///
/// ```
/// # fn main() -> Result<(), sb3_format::Error> {
/// let model = sb3_format::Model::open(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/sb3/ppo_cartpole.zip"))?;
/// assert_eq!(model.sb3_version(), Some("2.9.2"));
/// assert_eq!(model.policy_class().map(|c| c.name.as_str()), Some("ActorCriticPolicy"));
/// let policy = model.policy().expect("policy.pth");
/// for (name, tensor) in policy.tensors() {
///     println!("{name}: {} {:?}", tensor.dtype(), tensor.shape());
/// }
/// println!("{}", model.info_json());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Model<'data> {
    archive: ZipArchive<'data>,
    data: Option<Data>,
    sb3_version: Option<String>,
    system_info: Option<SystemInfo>,
    state_dicts: Vec<(String, Checkpoint<'data>)>,
}

impl Model<'static> {
    /// Memory-maps the file at `path` and opens it (nested `.pth` files in lenient mode).
    ///
    /// The file must not be modified while the model, or a tensor view of it, is alive.
    pub fn open(path: impl AsRef<Path>) -> Result<Model<'static>> {
        Model::open_with(path, &default_options())
    }

    /// Memory-maps the file at `path` and opens it with `options` (their limits apply to
    /// every member; their strictness to the nested `.pth` files, while `:serialized:`
    /// payloads are always decoded leniently).
    pub fn open_with(path: impl AsRef<Path>, options: &Options) -> Result<Model<'static>> {
        let path = path.as_ref();
        let map = MappedFile::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        let model = Model::from_shared(map.shared(), options)?;
        // Indexing touched only headers; reading tensors wants the kernel's read-ahead back.
        map.restore_readahead();
        Ok(model)
    }

    /// Opens bytes it takes ownership of.
    pub fn from_vec(bytes: Vec<u8>) -> Result<Model<'static>> {
        Model::from_shared(SharedBytes::from(bytes), &default_options())
    }
}

/// The bytes of a member, errors naming it.
fn read_entry<'data>(
    archive: &ZipArchive<'data>,
    entry: &ZipEntry,
    budget: &mut InflateBudget,
) -> Result<SharedBytes<'data>> {
    archive.read(entry, budget).map_err(|source| Error::Member {
        member: entry.name().to_owned(),
        source: Box::new(source),
    })
}

/// The options [`Model::open`] uses: default limits, nested `.pth` files lenient.
fn default_options() -> Options {
    Options::default().lenient(true)
}

impl<'data> Model<'data> {
    /// Opens bytes in memory, borrowing them: tensors are views into `bytes`.
    pub fn from_bytes(bytes: &'data [u8]) -> Result<Model<'data>> {
        Model::from_shared(SharedBytes::from(bytes), &default_options())
    }

    /// Opens shared bytes with `options` (see [`open_with`](Model::open_with)).
    pub fn from_shared(bytes: SharedBytes<'data>, options: &Options) -> Result<Model<'data>> {
        // SB3 reads its zip with Python's zipfile (and each nested `.pth` with torch.load).
        let archive =
            ZipArchive::parse_as(bytes, options.get_limits(), Dialect::Python).map_err(|source| Error::Archive {
                source: Box::new(source),
            })?;
        let mut model = Model {
            archive: archive.clone(),
            data: None,
            sb3_version: None,
            system_info: None,
            state_dicts: Vec::new(),
        };
        // Deflated members share one inflation budget, like the members of a torch archive.
        let mut budget = archive.budget();
        for entry in archive.entries() {
            let name = entry.name();
            let is_pth = name.ends_with(PTH) && name.len() > PTH.len();
            if !(is_pth || name == DATA || name == VERSION || name == SYSTEM_INFO) {
                continue;
            }
            let bytes = read_entry(&archive, entry, &mut budget)?;
            if is_pth {
                let checkpoint = Checkpoint::from_shared(bytes, options).map_err(|source| Error::Member {
                    member: name.to_owned(),
                    source: Box::new(source),
                })?;
                let stem = name.strip_suffix(PTH).unwrap_or(name);
                model.state_dicts.push((stem.to_owned(), checkpoint));
            } else if name == DATA {
                model.data = Some(Data::parse_with(bytes.as_slice(), options, DATA)?);
            } else if name == VERSION {
                let text = String::from_utf8_lossy(bytes.as_slice());
                model.sb3_version = Some(text.trim().to_owned());
            } else {
                let text = String::from_utf8_lossy(bytes.as_slice());
                model.system_info = Some(SystemInfo::parse(&text));
            }
        }
        Ok(model)
    }

    /// The zip members, in central directory order.
    pub fn entries(&self) -> &[ZipEntry] {
        self.archive.entries()
    }

    /// The names of the zip members, in central directory order.
    pub fn entry_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.archive.entries().iter().map(ZipEntry::name)
    }

    /// The bytes of any member: a zero-copy sub-slice when stored, inflated when deflated
    /// (within the limits the model was opened with).
    pub fn member(&self, name: &str) -> Result<SharedBytes<'data>> {
        let entry = self.archive.find(name).ok_or_else(|| Error::MissingMember {
            member: name.to_owned(),
        })?;
        read_entry(&self.archive, entry, &mut self.archive.budget())
    }

    /// The parsed `data` member, if present.
    pub fn data(&self) -> Option<&Data> {
        self.data.as_ref()
    }

    /// `_stable_baselines3_version`, trimmed, if present.
    pub fn sb3_version(&self) -> Option<&str> {
        self.sb3_version.as_deref()
    }

    /// `system_info.txt`, if present (SB3 ≥ 1.3).
    pub fn system_info(&self) -> Option<&SystemInfo> {
        self.system_info.as_ref()
    }

    /// The policy class, from `data`.
    pub fn policy_class(&self) -> Option<&GlobalName> {
        self.data.as_ref()?.policy_class()
    }

    /// `policy_kwargs`, from `data`.
    pub fn policy_kwargs(&self) -> Option<&PolicyKwargs> {
        self.data.as_ref()?.policy_kwargs()
    }

    /// The observation space, from `data`.
    pub fn observation_space(&self) -> Option<&Space> {
        self.data.as_ref()?.observation_space()
    }

    /// The action space, from `data`.
    pub fn action_space(&self) -> Option<&Space> {
        self.data.as_ref()?.action_space()
    }

    /// Every nested `.pth` as `(name without .pth, checkpoint)`, in archive order:
    /// `pytorch_variables`, `policy`, `policy.optimizer`, `actor.optimizer`, ...
    pub fn state_dicts(&self) -> impl ExactSizeIterator<Item = (&str, &Checkpoint<'data>)> + '_ {
        self.state_dicts.iter().map(|(n, c)| (n.as_str(), c))
    }

    /// The nested `.pth` named `name` (without `.pth`).
    pub fn state_dict(&self, name: &str) -> Option<&Checkpoint<'data>> {
        self.state_dicts.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// The policy's state dict (`policy.pth`).
    pub fn policy(&self) -> Option<&Checkpoint<'data>> {
        self.state_dict("policy")
    }

    /// The extra tensors SB3 saves (`pytorch_variables.pth`, or `tensors.pth` before SB3 0.9):
    /// `log_ent_coef`, `ent_coef_tensor`, ...
    pub fn pytorch_variables(&self) -> Option<&Checkpoint<'data>> {
        self.state_dict("pytorch_variables")
            .or_else(|| self.state_dict("tensors"))
    }

    /// The corpus model-entry fields this crate defines, as JSON: `sb3_version`,
    /// `system_info`, `entries`, `policy_class` (the class name), `observation_space` and
    /// `action_space` (see [`Space::to_json`]); absent values are `null`. Tensor entries
    /// (`state_dicts`) are left to the caller, which picks how to hash them.
    pub fn info_json(&self) -> Json {
        json!({
            "sb3_version": self.sb3_version(),
            "system_info": system_info_json(self.system_info()),
            "entries": self.entry_names().collect::<Vec<_>>(),
            "policy_class": self.policy_class().map(|c| c.name.as_str()),
            "observation_space": self.observation_space().map_or(Json::Null, Space::to_json),
            "action_space": self.action_space().map_or(Json::Null, Space::to_json),
        })
    }
}
