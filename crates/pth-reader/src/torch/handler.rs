//! The torch layer as the pickle machine's handler: torch's `weights_only` unpickler, call by
//! call.
//!
//! Each allowlisted global is evaluated when the pickle calls it, with its arguments as they
//! are then, following `torch/_weights_only_unpickler.py`, `torch/_utils.py` and
//! `torch/_tensor.py`: rebuild functions make tensors, `Parameter(...)` and the legacy
//! constructors (`torch.FloatTensor(...)`) make tensors, `torch.Size(...)` a tuple,
//! `OrderedDict`/`Counter`/`set`/`bytearray`/`complex`/`_codecs.encode` plain values. What
//! torch would refuse is refused; what this reader cannot reproduce exactly (uninitialised
//! memory, CUDA) is refused too, never approximated.

use super::globals::{self, Global};
use super::spec::{Data, Dims, TensorSpec, Work};
use super::storage::{self, Rules};
use crate::pickle::builtins;
use crate::pickle::call::{raise, Call, Failure, Handler, Outcome};
use crate::pickle::tree::{Construction, Node, Tree, ValueId};
use crate::tensor::Layout;
use crate::{DType, Error, ErrorKind, Limit, Limits};

/// The torch layer's handler.
pub(crate) struct TorchHandler<'a> {
    pub(crate) lenient: bool,
    pub(crate) limits: &'a Limits,
    /// The record holding the pickle, for error messages.
    pub(crate) record: &'a str,
    /// What persistent ids are, and so whether torch's calls are evaluated.
    pub(crate) ids: Ids,
    pub(crate) work: Work,
    /// How deeply calls nest inside calls (`_rebuild_from_type_v2` calls its function).
    pub(crate) nesting: u32,
}

/// What a pickle's persistent ids stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ids {
    /// Storages, resolved as the container's loader resolves them (the object pickle).
    Storages(Rules),
    /// Nothing: the other pickles of a torch file (a legacy stream's magic number, version,
    /// `sys_info` and key list), which torch unpickles without a `persistent_load` — an id is
    /// refused as Python refuses it, and torch's calls are evaluated as they would be there.
    Refused,
    /// Themselves, unresolved: standalone pickles (SB3 payloads), whose torch calls stay
    /// inert objects.
    Kept,
}

/// A call's positional arguments, copied out of the tree (which the call may then change):
/// inline up to 8 (every rebuild function takes fewer), so that a call allocates nothing.
type Arguments = smallvec::SmallVec<[ValueId; 8]>;

/// The deepest nesting of calls inside calls (Python would stop at its recursion limit).
pub(super) const MAX_NESTING: u32 = 100;

impl<'data> Handler<'data> for TorchHandler<'_> {
    fn allows_global(&self, module: &str, name: &str) -> bool {
        self.lenient || globals::is_allowed_global(module, name)
    }

    fn persistent_load(&mut self, tree: &mut Tree<'data>, pid: ValueId, _: u64) -> Result<ValueId, Failure> {
        match self.ids {
            Ids::Storages(rules) => storage::persistent_load(tree, &mut self.work, rules, self.lenient, pid),
            Ids::Refused => raise(
                "A load persistent id instruction was encountered, but no persistent_load function was specified.",
            ),
            Ids::Kept => Ok(tree.push(Node::PersistentId(pid))?),
        }
    }

    fn call(&mut self, tree: &mut Tree<'data>, call: &Call) -> Result<Outcome, Failure> {
        let Some((module, name)) = tree.global(call.callable) else {
            if self.lenient {
                return Ok(Outcome::Inert);
            }
            return raise(format!(
                "Trying to call reduce for unrecognized function {}",
                tree.type_name(call.callable)
            ));
        };
        let Some((global, allowed)) = globals::lookup(module, name) else {
            // Strict mode names no such global; a value that stands for one (the layout
            // `_get_layout` returns) is no function torch's unpickler calls.
            if self.lenient {
                return Ok(Outcome::Inert);
            }
            return raise(format!(
                "Trying to call reduce for unrecognized function {module}.{name}"
            ));
        };
        if !allowed && !self.lenient {
            return raise(format!("{module}.{name} is not allowed"));
        }
        let torch_call = !matches!(global, Global::Builtin(_));
        if torch_call && self.ids == Ids::Kept {
            return Ok(Outcome::Inert);
        }
        let args = self.arguments(tree, call)?;
        self.evaluate(tree, global, &args, call.construction, call.offset)
            .map(Outcome::Value)
    }

    fn build(
        &mut self,
        tree: &mut Tree<'data>,
        target: ValueId,
        state: ValueId,
        offset: u64,
    ) -> Result<Outcome, Failure> {
        if self.ids == Ids::Kept && !matches!(tree.node(target), Node::Dict(_)) {
            return Ok(Outcome::Inert);
        }
        self.set_state(tree, target, state, offset)
    }
}

impl TorchHandler<'_> {
    /// The positional arguments: `*args` unpacks a tuple or a list; keyword arguments
    /// (`NEWOBJ_EX`) must be empty.
    fn arguments(&self, tree: &Tree<'_>, call: &Call) -> Result<Arguments, Failure> {
        if let Some(kwargs) = call.kwargs {
            match tree.node(kwargs) {
                Node::Dict(d) if d.items.is_empty() => {}
                _ => return raise("keyword arguments are not supported"),
            }
        }
        match tree.seq(call.args) {
            Some(items) => Ok(Arguments::from_slice(items)),
            None => raise(format!(
                "argument after * must be a tuple or a list, not {}",
                tree.type_name(call.args)
            )),
        }
    }

    /// Calls `global(*args)` (or `global.__new__(global, *args)`).
    pub(super) fn evaluate(
        &mut self,
        tree: &mut Tree<'_>,
        global: Global,
        args: &[ValueId],
        construction: Construction,
        offset: u64,
    ) -> Result<ValueId, Failure> {
        // INST/OBJ call the class unless it takes no arguments, then `__new__`: the same
        // result for every global here.
        let new = construction == Construction::NewObj;
        match global {
            Global::Builtin(b) => builtins::call(tree, b, args, construction),
            Global::Rebuild(_) | Global::GetLayout if new => {
                raise("function.__new__(X): X is not a type object (function)")
            }
            Global::Rebuild(r) => self.rebuild(tree, r, args, offset),
            Global::Parameter => {
                let data = args.first().copied();
                let requires_grad = args.get(1).copied();
                if args.len() > 2 {
                    return raise("Parameter() takes at most 2 arguments");
                }
                self.parameter(tree, data, requires_grad, offset)
            }
            Global::Tensor => self.legacy_constructor(tree, DType::Float32, globals::Place::Cpu, args, offset),
            Global::TensorClass(dtype, place) => self.legacy_constructor(tree, dtype, place, args, offset),
            Global::Size => self.size(tree, args),
            Global::Device => self.device(tree, args),
            Global::GetLayout => self.get_layout(tree, args),
            Global::DType | Global::QScheme => raise("a torch dtype or qscheme is not callable"),
            Global::StorageType(_) => raise("'StorageType' object is not callable"),
            Global::TypedStorage | Global::UntypedStorage => {
                Err(self.unsupported("constructing a storage in the pickle"))
            }
        }
    }

    /// `record at byte N`, for warnings.
    pub(super) fn at(&self, offset: u64) -> String {
        format!("{} at byte {offset}", self.record)
    }

    /// A tensor whose metadata torch refuses, made by the call at `offset` (kept until the
    /// tensor's path is known, so located here rather than by the machine).
    #[cold]
    pub(super) fn invalid(&self, offset: u64, reason: impl std::fmt::Display) -> Failure {
        let error = Error::from(ErrorKind::InvalidTensor {
            reason: reason.to_string(),
        });
        Failure::Error(error.at(self.record, offset))
    }

    /// A feature this reader does not reproduce (the machine says where).
    pub(super) fn unsupported(&self, what: impl std::fmt::Display) -> Failure {
        Failure::Error(ErrorKind::Unsupported { what: what.to_string() }.into())
    }

    /// Adds a tensor and its node.
    pub(super) fn tensor_node(&mut self, tree: &mut Tree<'_>, spec: TensorSpec) -> Result<ValueId, Failure> {
        let index = self.work.add_tensor(spec);
        Ok(tree.push(Node::Tensor(index))?)
    }

    /// Makes the tensor `made` describes, or — when its layout is invalid — a placeholder that
    /// makes opening fail once the tensor's path is known.
    pub(super) fn tensor_or_invalid(
        &mut self,
        tree: &mut Tree<'_>,
        made: Result<TensorSpec, Failure>,
    ) -> Result<ValueId, Failure> {
        match made {
            Ok(spec) => self.tensor_node(tree, spec),
            Err(Failure::Error(error)) if matches!(error.kind(), ErrorKind::InvalidTensor { .. }) => {
                let layout = Layout::validate(DType::UInt8, &[0], &[1], 0, None, self.limits)
                    .map_err(|r| Failure::Python(r.to_string()))?;
                let index = self.work.add_tensor(TensorSpec::new(layout, Data::Meta));
                self.work.invalid.push((index, error));
                Ok(tree.push(Node::Tensor(index))?)
            }
            Err(other) => Err(other),
        }
    }

    /// The tensor index of a tensor node.
    pub(super) fn tensor_index(tree: &Tree<'_>, id: ValueId) -> Option<u32> {
        match tree.node(id) {
            Node::Tensor(i) => Some(*i),
            _ => None,
        }
    }

    /// The spec of a tensor argument, cloned (calls copy what they read).
    pub(super) fn tensor_arg(&self, tree: &Tree<'_>, id: Option<ValueId>, what: &str) -> Result<TensorSpec, Failure> {
        id.and_then(|a| Self::tensor_index(tree, a))
            .and_then(|i| self.work.tensor(i))
            .cloned()
            .ok_or_else(|| {
                let kind = id.map_or("nothing".to_owned(), |a| tree.type_name(a));
                Failure::Python(format!("{what} must be a Tensor, not {kind}"))
            })
    }

    /// A `requires_grad` argument: exactly a bool, and `True` only for floating or complex
    /// dtypes (`RuntimeError: requires_grad must be a bool`).
    pub(super) fn requires_grad(tree: &Tree<'_>, id: Option<ValueId>, dtype: DType) -> Result<bool, Failure> {
        match id.map(|a| tree.node(a)) {
            Some(Node::Bool(b)) => {
                if *b && !can_require_grad(dtype) {
                    return raise("only Tensors of floating point and complex dtype can require gradients");
                }
                Ok(*b)
            }
            _ => raise("requires_grad must be a bool"),
        }
    }

    /// A size, stride or shape argument: a tuple, list or `torch.Size` of ints.
    pub(super) fn dims(&self, tree: &Tree<'_>, id: Option<ValueId>, what: &str) -> Result<Dims, Failure> {
        let Some(items) = id.and_then(|a| tree.seq(a)) else {
            return raise(format!("{what} must be a tuple of ints"));
        };
        let max = self.limits.max_dims;
        if items.len() as u64 > max {
            return Err(Failure::Error(Error::limit_in(Limit::MaxDims, max, what)));
        }
        // A plain loop: collecting `Result`s goes through a generic adapter that costs more
        // than the few elements (one to four, nearly always) it collects.
        let mut dims = Dims::new();
        for &d in items {
            match tree.node(d) {
                Node::Int(v) => dims.push(*v),
                Node::BigInt(_) => return raise(format!("{what}: integer out of range")),
                _ => {
                    return raise(format!(
                        "{what} must be a tuple of ints, but found element of type {}",
                        tree.type_name(d)
                    ))
                }
            }
        }
        Ok(dims)
    }

    /// A dtype argument: a global `torch.<dtype>`.
    pub(super) fn dtype_arg(&self, tree: &Tree<'_>, id: Option<ValueId>) -> Result<DType, Failure> {
        match id.and_then(|a| tree.global(a)) {
            Some(("torch", name)) => match DType::from_name(name) {
                Some(d) => Ok(d),
                None if matches!(globals::lookup("torch", name), Some((Global::DType, _))) => {
                    Err(self.unsupported(format!("dtype torch.{name}")))
                }
                None => raise(format!("torch.{name} is not a dtype")),
            },
            _ => raise("the dtype argument is not a torch dtype"),
        }
    }

    /// Python's truth value of a plain value; `None` for values whose truth this reader does
    /// not decide (tensors, objects that may define `__bool__`).
    pub(super) fn truthy(tree: &Tree<'_>, id: ValueId) -> Option<bool> {
        Some(match tree.node(id) {
            Node::None => false,
            Node::Bool(b) => *b,
            Node::Int(i) => *i != 0,
            Node::BigInt(_) => true,
            Node::Float(f) => *f != 0.0,
            Node::Complex(re, im) => *re != 0.0 || *im != 0.0,
            Node::Str(s) | Node::Bytes(s) | Node::ByteArray(s) => s.len() > 0,
            Node::List(v) => !v.is_empty(),
            Node::Tuple(v) | Node::FrozenSet(v) => !v.is_empty(),
            Node::Set(s) => !s.items.is_empty(),
            Node::Dict(d) if d.class.takes_items() => !d.items.is_empty(),
            Node::Global(_) | Node::Storage(_) => true,
            _ => return None,
        })
    }
}

impl<'a> TorchHandler<'a> {
    /// A handler for one pickle named `record`.
    pub(crate) fn new(options: &'a crate::Options, record: &'a str, ids: Ids) -> TorchHandler<'a> {
        TorchHandler {
            lenient: options.is_lenient(),
            limits: options.limits(),
            record,
            ids,
            work: Work::default(),
            nesting: 0,
        }
    }

    /// What the pickle made.
    pub(crate) fn into_work(self) -> Work {
        self.work
    }
}

/// Whether tensors of `dtype` can require grad (and carry it through a copy): floating point
/// and complex ones, as torch has it.
pub(super) fn can_require_grad(dtype: DType) -> bool {
    dtype.is_floating_point() || dtype.is_complex()
}
