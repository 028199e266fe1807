"""Optimizers by name beyond transformers' `OptimizerNames`: `OPTIMIZERS`, filled by the methods that bring one.

    CifarTrainingArguments(optim="exadam", learning_rate=1e-3, optim_args="growing_step=False")
    hfcifar train fastnet --optim exadam --learning_rate 1e-3

`TrainingArguments.optim` accepts only transformers' own names. `CifarTrainingArguments` lets a name registered here
through (keeping it as a plain string) and `CifarTrainer.get_optimizer_cls_and_kwargs` builds it, so the Trainer's
own `create_optimizer` (parameter groups with and without weight decay, checkpointed optimizer state, resume) does
the rest — there is no second optimizer path. A method registers its optimizer class with
`provide("optimizer", NAME, "hfcifar.methods.<pkg>.<module>:<Class>")`.

The class receives `lr`, `weight_decay` through the parameter groups, `betas=(adam_beta1, adam_beta2)` and
`eps=adam_epsilon` when its constructor takes them, and every `optim_args` entry (`key=value`, values parsed as
Python literals: numbers, booleans, tuples).
"""

from __future__ import annotations

import ast
import inspect

from transformers.training_args import OptimizerNames

from ..registry import Registry, RegistryError

_TRANSFORMERS_NAMES = frozenset(name.value for name in OptimizerNames)

OPTIMIZERS: Registry[type] = Registry("optimizer", hint="Transformers' own names (`adamw_torch`, `sgd`, …) work too.")


def is_transformers_optimizer(name) -> bool:
    """Whether `name` is one of transformers' `OptimizerNames` (a member or its string value)."""
    return isinstance(name, str) and str(getattr(name, "value", name)) in _TRANSFORMERS_NAMES


def is_registered_optimizer(name) -> bool:
    """Whether `name` (a `TrainingArguments.optim` value) is one of `OPTIMIZERS` rather than a transformers name."""
    if not isinstance(name, str) or is_transformers_optimizer(name):
        return False
    try:
        OPTIMIZERS.get(name)
    except RegistryError:
        return False
    return True


def parse_optim_args(text: str | None, what: str = "optim_args") -> dict:
    """`"a=1,b=(0.9, 0.99),c=False"` → `{"a": 1, "b": (0.9, 0.99), "c": False}` (values as Python literals, bare words
    as strings). Commas inside parentheses or brackets belong to the value. `what` names the option in errors."""
    entries, depth, current = [], 0, ""
    for char in text or "":
        depth += (char in "([") - (char in ")]")
        if char == "," and depth == 0:
            entries.append(current)
            current = ""
        else:
            current += char
    entries.append(current)
    parsed = {}
    for entry in filter(str.strip, entries):
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} entries are key=value separated by commas; got {entry!r} in {text!r}.")
        try:
            parsed[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            parsed[key.strip()] = value.strip()
    return parsed


def registered_optimizer_cls_and_kwargs(args) -> tuple[type, dict]:
    """The class and constructor keywords of `args.optim`, a name of `OPTIMIZERS` (see the module docstring)."""
    cls = OPTIMIZERS.get(args.optim)
    accepted = inspect.signature(cls).parameters
    kwargs = {"lr": args.learning_rate}
    if "betas" in accepted:
        kwargs["betas"] = (args.adam_beta1, args.adam_beta2)
    if "eps" in accepted:
        kwargs["eps"] = args.adam_epsilon
    extra = parse_optim_args(args.optim_args)
    unknown = sorted(set(extra) - set(accepted))
    if unknown and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        raise ValueError(f"optim_args {unknown} are not arguments of {cls.__name__} (it takes "
                         f"{', '.join(name for name in accepted if name != 'params')}).")
    kwargs.update(extra)
    return cls, kwargs
