//! [`Model`]: an opened SB3 model zip.

use std::path::Path;

use pth_reader::zip::{Dialect, InflateBudget, ZipArchive, ZipEntry};
use pth_reader::{Checkpoint, Options, SharedBytes};

use crate::data::Data;
use crate::names::GlobalName;
use crate::policy_kwargs::PolicyKwargs;
use crate::space::Space;
use crate::system_info::SystemInfo;
use crate::{Error, ErrorKind, Result};

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
/// The [`Options`] apply to every member: their limits, whether the file is memory-mapped,
/// and their strictness to the nested `.pth` files (strict refuses a state dict naming a global
/// outside torch's allowlist; no SB3 version writes one), while `:serialized:` payloads, which
/// are cloudpickles whose globals are code by design, are always decoded inert (lenient).
///
/// ```
/// # fn main() -> Result<(), sb3_format::Error> {
/// use pth_reader::Options;
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/sb3/ppo_cartpole.zip");
/// let model = sb3_format::Model::open(path, &Options::default())?;
/// assert_eq!(model.sb3_version(), Some("2.9.2"));
/// assert_eq!(model.policy_class().map(|c| c.name.as_str()), Some("ActorCriticPolicy"));
/// let policy = model.policy().expect("policy.pth");
/// for (name, tensor) in policy.tensors() {
///     println!("{name}: {} {:?}", tensor.dtype(), tensor.shape());
/// }
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
    /// Opens the file at `path`, memory-mapped or read into memory as `options` say (a mapped
    /// file must not be modified while the model, or a tensor view of it, is alive).
    pub fn open(path: impl AsRef<Path>, options: &Options) -> Result<Model<'static>> {
        let path = path.as_ref();
        let bytes = SharedBytes::open(path, options).map_err(|source| ErrorKind::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Model::from_bytes(bytes, options)
    }
}

/// The bytes of a member, errors naming it.
fn read_entry<'data>(
    archive: &ZipArchive<'data>,
    entry: &ZipEntry,
    budget: &mut InflateBudget,
) -> Result<SharedBytes<'data>> {
    archive.read(entry, budget).map_err(|source| {
        Error::from(ErrorKind::Member {
            member: entry.name().to_owned(),
            source,
        })
    })
}

impl<'data> Model<'data> {
    /// Opens bytes in memory: borrowed (`&'data [u8]`: tensors are views into them), owned
    /// (`Vec<u8>`), or shared ([`SharedBytes`]). Nothing is copied but deflated members.
    pub fn from_bytes(bytes: impl Into<SharedBytes<'data>>, options: &Options) -> Result<Model<'data>> {
        // SB3 reads its zip with Python's zipfile (and each nested `.pth` with torch.load).
        let archive = ZipArchive::parse_as(bytes.into(), options.limits(), Dialect::Python)
            .map_err(|source| ErrorKind::Archive { source })?;
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
                let checkpoint = Checkpoint::from_bytes(bytes, options).map_err(|source| ErrorKind::Member {
                    member: name.to_owned(),
                    source,
                })?;
                let stem = name.strip_suffix(PTH).unwrap_or(name);
                model.state_dicts.push((stem.to_owned(), checkpoint));
            } else if name == DATA {
                model.data = Some(Data::parse(bytes.as_slice(), options)?);
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
        let entry = self.archive.find(name).ok_or_else(|| ErrorKind::MissingMember {
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
}
