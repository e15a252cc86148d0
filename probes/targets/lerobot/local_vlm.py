"""The hub files a VLA policy reads when it is built, written locally by the tool itself.

smolvla builds its vision-language model from `vlm_model_name`: `AutoConfig.from_pretrained` for
the network and `AutoProcessor.from_pretrained` for the tokenizer's image tokens. Both read a local
folder as readily as a hub repository, so the tool writes a small SmolVLM of its own (a config and
a processor around a word-level tokenizer made with the `tokenizers` library) into its cache, once,
and points `vlm_model_name` at it.

pi0_fast loads two tokenizers by name: PaliGemma's (`text_tokenizer_name`: its bos id, the "|"
that ends the actions, the "Action: " prefix, its vocabulary size) and the FAST action tokenizer
(`action_tokenizer_name`, custom code loaded with `trust_remote_code`). The tool writes both: a
word-level tokenizer with PaliGemma's vocabulary size and ids, and a folder holding
`local_action_processor.py` with an `auto_map` to it, which transformers imports from the folder.

Nothing is downloaded: every folder is made from code, read back with `local_files_only=True`
before it is used, and renamed into place whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # transformers is imported when a folder is written, not when this module is
    from transformers import PreTrainedTokenizerFast, SmolVLMConfig, SmolVLMProcessor

CACHE_ENV = "COMPILE_DIAGNOSE_CACHE"  # overrides the root of the tool's cache
CACHE_DIR_NAME = "compile-diagnose"
VLM_DIR_NAME = "vlm"
# Bump when the files written change, so that a folder from an older writer is not reused.
FOLDER_FORMAT = 1

# The tokenizer's special tokens: what SmolVLM's processor and smolvla's model look up by name.
UNK_TOKEN = "<unk>"
PAD_TOKEN = "<pad>"
BOS_TOKEN = "<|im_start|>"
EOS_TOKEN = "<end_of_utterance>"
NAMED_IMAGE_TOKENS = {
    "fake_image_token": "<fake_token_around_image>",
    "global_image_token": "<global-img>",
    "image_token": "<image>",
    "end_of_utterance_token": EOS_TOKEN,
    "video_token": "<video>",
}
SPECIAL_TOKENS = (UNK_TOKEN, PAD_TOKEN, BOS_TOKEN, *dict.fromkeys(NAMED_IMAGE_TOKENS.values()))
WORD_PREFIX = "w"  # the ordinary words fill the vocabulary as w0, w1, ...


@dataclass(frozen=True)
class LocalVLM:
    """A SmolVLM small enough to build with random weights: a llama text model and a vision tower.

    `vocab_size` is the language token range: a batch's `observation.language.tokens` are drawn
    below it. smolvla keeps the first `num_vlm_layers` of `text_layers`.
    """

    name: str
    text_hidden: int
    text_layers: int
    text_heads: int
    text_kv_heads: int
    text_head_dim: int
    vocab_size: int
    vision_hidden: int
    vision_layers: int
    vision_heads: int
    image_size: int
    patch_size: int
    scale_factor: int = 2
    # The longest language sequence the text model's positions are sized for.
    max_positions: int = 512

    @property
    def text_intermediate(self) -> int:
        return 4 * self.text_hidden

    @property
    def vision_intermediate(self) -> int:
        return 4 * self.vision_hidden

    @property
    def image_tokens(self) -> int:
        """The tokens one image becomes after the connector's pixel shuffle."""
        return (self.image_size // self.patch_size) ** 2 // self.scale_factor**2

    @property
    def folder_name(self) -> str:
        return f"{self.name}-{fingerprint(asdict(self))}"


TINY = LocalVLM(
    name="tiny",
    text_hidden=64,
    text_layers=4,
    text_heads=4,
    text_kv_heads=2,
    text_head_dim=16,
    vocab_size=128,
    vision_hidden=32,
    vision_layers=2,
    vision_heads=2,
    image_size=64,
    patch_size=16,
)

CPU = LocalVLM(
    name="cpu",
    text_hidden=256,
    text_layers=4,
    text_heads=8,
    text_kv_heads=4,
    text_head_dim=32,
    vocab_size=1024,
    vision_hidden=128,
    vision_layers=2,
    vision_heads=4,
    image_size=128,
    patch_size=16,
)

LOCAL_VLMS: dict[str, LocalVLM] = {vlm.name: vlm for vlm in (TINY, CPU)}


def default_cache_root() -> Path:
    """The tool's cache: `$COMPILE_DIAGNOSE_CACHE`, else `$XDG_CACHE_HOME/compile-diagnose`, else
    `~/.cache/compile-diagnose`."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / CACHE_DIR_NAME


def vlm_folder(vlm: LocalVLM, cache_root: Path | None = None) -> Path:
    """The local folder `vlm_model_name` points at: written once into the cache, reused after."""
    folder = (cache_root or default_cache_root()) / VLM_DIR_NAME / vlm.folder_name
    return cached_folder(folder, lambda draft: write_vlm(vlm, draft))


def fingerprint(fields: dict[str, Any]) -> str:
    """A short hash of what a folder is written from and of the writer's format: part of its
    name, so that a folder written from other fields or by an older writer is never reused."""
    text = json.dumps({**fields, "format": FOLDER_FORMAT}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cached_folder(folder: Path, write: Callable[[Path], None]) -> Path:
    """`folder` if it exists, else written by `write` into a temporary sibling renamed into place.

    A reader never sees half a folder; when two processes write at once, the second rename fails
    and that process uses the first one's folder.
    """
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _temporary_sibling(folder) as draft:
        write(draft)
        _move_into_place(draft, folder)
    return folder


def smolvla_config(vlm: LocalVLM, cache_root: Path | None = None) -> dict[str, Any]:
    """The SmolVLAConfig values that build smolvla on `vlm`'s local folder with random weights.

    `tokenizer_max_length` stays lerobot's: only the pre-processor's tokenizer reads it, and the
    text model's positions (`max_positions`) leave room for it beside the images and the actions.
    """
    return {
        "vlm_model_name": str(vlm_folder(vlm, cache_root)),
        "load_vlm_weights": False,
        "num_vlm_layers": vlm.text_layers,
        "resize_imgs_with_padding": (vlm.image_size, vlm.image_size),
    }


def write_vlm(vlm: LocalVLM, folder: Path) -> None:
    """Write the config and the processor (tokenizer, image and video processors) into `folder`,
    and read them back as smolvla will, from the folder alone."""
    tokenizer = _tokenizer(vlm)
    _config(vlm, tokenizer).save_pretrained(folder)
    _processor(vlm, tokenizer).save_pretrained(folder)
    _read_back(folder)


def _read_back(folder: Path) -> None:
    """Load what smolvla loads, with `local_files_only`: a folder that fails here is never used."""
    from transformers import AutoConfig, AutoProcessor

    AutoConfig.from_pretrained(folder, local_files_only=True)
    AutoProcessor.from_pretrained(folder, local_files_only=True)


@contextlib.contextmanager
def _temporary_sibling(folder: Path) -> Iterator[Path]:
    """A fresh folder beside `folder` (same file system, so a rename moves it), removed afterwards
    unless it was moved."""
    draft = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        yield draft
    finally:
        shutil.rmtree(draft, ignore_errors=True)


def _move_into_place(draft: Path, folder: Path) -> None:
    """Rename the written draft to its final name; another writer's complete folder wins a race."""
    try:
        draft.rename(folder)
    except OSError:
        if not folder.is_dir():
            raise


def _vocabulary(vlm: LocalVLM) -> dict[str, int]:
    """The special tokens first, then words up to `vocab_size` ids."""
    words = [f"{WORD_PREFIX}{i}" for i in range(vlm.vocab_size - len(SPECIAL_TOKENS))]
    if not words:
        raise ValueError(
            f"vocab_size {vlm.vocab_size} leaves no room beside {len(SPECIAL_TOKENS)} special ones"
        )
    return {token: i for i, token in enumerate((*SPECIAL_TOKENS, *words))}


def _tokenizer(vlm: LocalVLM) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over `_vocabulary`, made with the `tokenizers` library."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(vocab=_vocabulary(vlm), unk_token=UNK_TOKEN))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token=UNK_TOKEN,
        pad_token=PAD_TOKEN,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        extra_special_tokens=dict(NAMED_IMAGE_TOKENS),
        model_max_length=vlm.max_positions,
    )


def _config(vlm: LocalVLM, tokenizer: PreTrainedTokenizerFast) -> SmolVLMConfig:
    from transformers import SmolVLMConfig

    text = {
        "model_type": "llama",
        "hidden_size": vlm.text_hidden,
        "intermediate_size": vlm.text_intermediate,
        "num_hidden_layers": vlm.text_layers,
        "num_attention_heads": vlm.text_heads,
        "num_key_value_heads": vlm.text_kv_heads,
        "head_dim": vlm.text_head_dim,
        "vocab_size": vlm.vocab_size,
        "max_position_embeddings": vlm.max_positions,
        "rms_norm_eps": 1e-5,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    vision = {
        "hidden_size": vlm.vision_hidden,
        "intermediate_size": vlm.vision_intermediate,
        "num_hidden_layers": vlm.vision_layers,
        "num_attention_heads": vlm.vision_heads,
        "image_size": vlm.image_size,
        "patch_size": vlm.patch_size,
    }
    return SmolVLMConfig(
        text_config=text,
        vision_config=vision,
        scale_factor=vlm.scale_factor,
        image_token_id=tokenizer.convert_tokens_to_ids(NAMED_IMAGE_TOKENS["image_token"]),
        pad_token_id=tokenizer.pad_token_id,
    )


def _processor(vlm: LocalVLM, tokenizer: PreTrainedTokenizerFast) -> SmolVLMProcessor:
    """SmolVLM's processor at the model's image size, one image per picture (no splitting)."""
    from transformers import SmolVLMImageProcessor, SmolVLMProcessor, SmolVLMVideoProcessor

    edge = {"longest_edge": vlm.image_size}
    image_processor = SmolVLMImageProcessor(
        size=edge, max_image_size=edge, do_image_splitting=False
    )
    video_processor = SmolVLMVideoProcessor(size=edge, max_image_size=edge)
    return SmolVLMProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        image_seq_len=vlm.image_tokens,
    )


# --- pi0_fast: PaliGemma's tokenizer and the FAST action tokenizer ---------------------------

TOKENIZERS_DIR_NAME = "tokenizers"
ACTION_PROCESSOR_SOURCE = Path(__file__).with_name("local_action_processor.py")
ACTION_PROCESSOR_CLASS = "LocalActionProcessor"
ACTION_TOKENIZER_SUBFOLDER = (
    "bpe_tokenizer"  # where transformers loads a processor's `bpe_tokenizer`
)
PROCESSOR_CONFIG = "processor_config.json"

# PaliGemma's special tokens, at PaliGemma's ids.
PALIGEMMA_SPECIAL_TOKENS = ("<pad>", "<eos>", "<bos>", "<unk>")
# The words pi0_fast and its pre-processor encode: the "Action: " prefix, the "|" that ends the
# actions, the prompt's "Task: ..., State: ...;" and the state's 256 bins.
PALIGEMMA_WORDS = ("Action", ":", "|", "Task", ",", "State", ";", *map(str, range(256)))


@dataclass(frozen=True)
class FastTokenizers:
    """The two tokenizers pi0_fast loads: PaliGemma's (text) and FAST's (actions).

    `text_vocab_size` is the vocabulary of pi0_fast's PaliGemma, fixed in lerobot's model: the
    model maps action token `a` to text id `text_vocab_size - 1 - fast_skip_tokens - a`.
    """

    text_vocab_size: int = 257152
    action_vocab_size: int = 1024
    scale: float = 10.0
    min_token: int = -512  # the smallest quantised DCT coefficient, action token 0

    def folder_name(self, kind: str) -> str:
        source = hashlib.sha256(ACTION_PROCESSOR_SOURCE.read_bytes()).hexdigest()
        return f"{kind}-{fingerprint({**asdict(self), 'source': source})}"


FAST = FastTokenizers()


def fast_tokenizer_folders(
    tokenizers: FastTokenizers = FAST, cache_root: Path | None = None
) -> dict[str, str]:
    """PI0FastConfig's `text_tokenizer_name` and `action_tokenizer_name`, as local folders."""
    parent = (cache_root or default_cache_root()) / TOKENIZERS_DIR_NAME
    text = parent / tokenizers.folder_name("paligemma")
    action = parent / tokenizers.folder_name("fast-action")
    return {
        "text_tokenizer_name": str(
            cached_folder(text, lambda draft: write_text_tokenizer(tokenizers, draft))
        ),
        "action_tokenizer_name": str(
            cached_folder(action, lambda draft: write_action_tokenizer(tokenizers, draft))
        ),
    }


def write_text_tokenizer(tokenizers: FastTokenizers, folder: Path) -> None:
    """A word-level tokenizer with PaliGemma's vocabulary size and special ids."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    known = (*PALIGEMMA_SPECIAL_TOKENS, *PALIGEMMA_WORDS)
    fillers = (f"{WORD_PREFIX}{i}" for i in range(tokenizers.text_vocab_size - len(known)))
    vocab = {token: i for i, token in enumerate((*known, *fillers))}
    pad, eos, bos, unk = PALIGEMMA_SPECIAL_TOKENS
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=unk))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token=pad, eos_token=eos, bos_token=bos, unk_token=unk
    )
    tokenizer.save_pretrained(folder)
    AutoTokenizer.from_pretrained(folder, local_files_only=True)


def write_action_tokenizer(tokenizers: FastTokenizers, folder: Path) -> None:
    """The stand-in FAST processor: its code, its config (with `auto_map` to the code), and its
    one-character-per-token tokenizer in the subfolder transformers reads `bpe_tokenizer` from."""
    from transformers import AutoProcessor

    _char_tokenizer(tokenizers.action_vocab_size).save_pretrained(
        folder / ACTION_TOKENIZER_SUBFOLDER
    )
    shutil.copyfile(ACTION_PROCESSOR_SOURCE, folder / ACTION_PROCESSOR_SOURCE.name)
    config = {
        "processor_class": ACTION_PROCESSOR_CLASS,
        "auto_map": {"AutoProcessor": f"{ACTION_PROCESSOR_SOURCE.stem}.{ACTION_PROCESSOR_CLASS}"},
        "scale": tokenizers.scale,
        "vocab_size": tokenizers.action_vocab_size,
        "min_token": tokenizers.min_token,
    }
    (folder / PROCESSOR_CONFIG).write_text(json.dumps(config, indent=2))
    AutoProcessor.from_pretrained(folder, trust_remote_code=True, local_files_only=True)


def _char_tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    """Token `i` is the character `chr(i)`; decoding concatenates the characters."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(vocab={chr(i): i for i in range(vocab_size)}, merges=[]))
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, clean_up_tokenization_spaces=False)
