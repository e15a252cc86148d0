"""The rule catalogue: every finding the analyzer can yield, documented in one place.

Each rule carries the four parts of a ruff rule page (what it does, why it matters, an example,
what to use instead). `compile-diagnose explain CODE` and `docs/rules.md` are generated from
these objects. Prose is Markdown (inline code in backticks); examples are code.
Figures quoted in the docs are the measurements of `../shared/DESIGN.md`.
"""

from __future__ import annotations

import textwrap

from analyzer.findings import Rule, Severity


def _code(snippet: str) -> str:
    return textwrap.dedent(snippet).strip("\n")


def _prose(*sentences: str) -> str:
    return " ".join(sentences)


RULES: tuple[Rule, ...] = (
    Rule(
        code="CD101",
        name="compiled-path-not-exercised",
        title="The timed entry point ran no compiled code",
        default_severity=Severity.ERROR,
        what_it_does=_prose(
            "Checks that compiled code actually ran for the entry point whose time and output are",
            "measured: that dynamo captured at least one frame (its `frames` counter, its",
            "compilation metrics, or a `Torch-Compiled Region` profiler event) while that entry",
            "point was called. In triage of a benchmark report, flags an action difference of",
            "exactly 0.0 together with a speedup near 1.0x.",
        ),
        why_it_matters=_prose(
            "`torch.compile(module)` returns an `OptimizedModule` that compiles `forward` only;",
            "every other method, such as a LeRobot policy's `select_action`, is forwarded to the",
            "eager module. A benchmark that calls such a method compares eager with itself: the",
            "outputs match bit for bit (a real backend almost never does that for a conv +",
            "transformer model) and the speedup is the noise between two eager runs. Such figures",
            "say nothing about torch.compile, and a passing correctness check hides the fact.",
        ),
        example=_code(
            """
            policy_compiled = torch.compile(policy)  # compiles policy.forward only
            action = policy_compiled.select_action(batch)  # runs the eager method
            """
        ),
        use_instead=_code(
            """
            policy_compiled = copy.deepcopy(policy)  # nothing shared with eager
            policy_compiled.select_action = torch.compile(policy_compiled.select_action)
            policy_compiled.forward = torch.compile(policy_compiled.forward)
            # or compile the network inside the policy: policy_compiled.model.compile()
            """
        ),
    ),
    Rule(
        code="CD102",
        name="graph-break",
        title="Graph break in a timed entry point",
        default_severity=Severity.WARNING,
        what_it_does=_prose(
            "Reports each place where dynamo stopped tracing a timed entry point and split it",
            "into separate graphs: the reason (with torch's graph-break id, `GBnnnn`, where it has",
            "one), the file, line and source line in your code, how often it was hit, a category",
            "you can act on (scalar read, data-dependent control flow, print/logging, unsupported",
            "call, dynamic shape, other) and, with the kernel-timing probe, the time spent outside",
            "compiled regions because of it.",
        ),
        why_it_matters=_prose(
            "At a break dynamo ends the current graph, runs the offending code as eager Python and",
            "starts a new graph after it. Inductor cannot fuse across the break, each graph adds",
            "launches, guards and compile time, and a scalar read such as `.item()` makes the host",
            "wait for the device to finish. In a training step the backward graph is split too.",
            "ACT's training forward breaks at `loss_dict = {'l1_loss': l1_loss.item()}`",
            "(`modeling_act.py:150` in lerobot 0.6.1).",
        ),
        example=_code(
            """
            def forward(self, batch):
                loss = self.compute_loss(batch)
                loss_dict = {"l1_loss": loss.item()}  # Tensor.item(): graph break
                return loss, loss_dict
            """
        ),
        use_instead=_code(
            """
            def forward(self, batch):
                loss = self.compute_loss(batch)
                loss_dict = {"l1_loss": loss.detach()}  # stays a tensor: no break
                return loss, loss_dict


            # read the number outside the compiled region, after the step:
            logged = {key: value.item() for key, value in loss_dict.items()}
            """
        ),
    ),
    Rule(
        code="CD103",
        name="recompilation",
        title="Recompiled under ordinary use",
        default_severity=Severity.WARNING,
        what_it_does=_prose(
            "Calls the compiled entry point the way it is used (another batch size, train then",
            "eval, with and without grad, a second call with a filled action queue) and reports",
            "each recompile with the guard that failed, from",
            "`torch._dynamo.utils.get_compilation_metrics()` or the `recompiles` log, and whether",
            "the recompile limit was reached (an error when it was).",
        ),
        why_it_matters=_prose(
            "Dynamo specialises a compiled frame on what it saw (tensor shapes, Python values,",
            "module state such as `training`) and guards on it. A failed guard compiles the frame",
            "again, seconds to minutes on the caller's time, often inside a loop that is being",
            "timed. After `torch._dynamo.config.recompile_limit` recompiles of one frame (8 by",
            "default) torch stops compiling it and silently runs it eager from then on.",
        ),
        example=_code(
            """
            policy.select_action = torch.compile(policy.select_action)
            policy.select_action(batch)  # compiles: the queue is empty, predicts a chunk
            policy.select_action(batch)  # recompiles: guard `not self._action_queue` fails
            """
        ),
        use_instead=_code(
            """
            # compile the tensor work, not the Python bookkeeping around it
            policy.model.compile()
            # a size that changes between calls: mark it dynamic before the first call
            torch._dynamo.mark_dynamic(batch["observation.state"], 0)
            """
        ),
    ),
    Rule(
        code="CD104",
        name="compilation-failed",
        title="torch.compile raised an error",
        default_severity=Severity.ERROR,
        what_it_does=_prose(
            "Reports a compile that raised (`compilation_successful: false` in a benchmark",
            "report) with the first line of its error, and the stage it came from where the error",
            "names one: dynamo (tracing Python), AOTAutograd (the backward graph) or the backend",
            "(Inductor's code generation).",
        ),
        why_it_matters=_prose(
            "Without a compiled program no other figure of a benchmark means anything, and the",
            "stage that failed decides where the fix lies: in your code (dynamo cannot trace it),",
            "in AOTAutograd, or in Inductor. Running the same model through successively more of",
            "the stack tells them apart in minutes.",
        ),
        example=_code(
            """
            compiled = torch.compile(policy.model)
            compiled(batch)  # raises torch._dynamo.exc.BackendCompilerFailed
            """
        ),
        use_instead=_code(
            """
            torch.compile(policy.model, backend="eager")(batch)  # dynamo alone
            torch.compile(policy.model, backend="aot_eager")(batch)  # + AOTAutograd
            torch.compile(policy.model)(batch)  # + Inductor
            # TORCHDYNAMO_REPRO_AFTER="dynamo" writes a minimal repro of the failure
            """
        ),
    ),
    Rule(
        code="CD201",
        name="launch-bound",
        title="The GPU is idle most of a call",
        default_severity=Severity.WARNING,
        what_it_does=_prose(
            "In a profiler trace of one call, compares the time the GPU spends in kernels (events",
            "of category `kernel`, `gpu_memcpy` and `gpu_memset`, never annotations) with the",
            "call's wall span, and counts the kernels launched and the host time in launch APIs.",
            "When the GPU is idle most of the call, it reports the speedup of",
            '`mode="reduce-overhead"` that a what-if run measured.',
        ),
        why_it_matters=_prose(
            "When kernels are short the host cannot launch them as fast as the GPU finishes them,",
            "and the GPU waits. Default-mode Inductor fuses some kernels but still launches",
            "hundreds a call, so the speedup stays small: ACT inference on an H100 ran ~400",
            "kernels with the GPU busy about a quarter of the call, and compiled was 1.06x faster",
            "than eager. CUDA graphs record the launches once and replay them in one call: 2.79x",
            "on the same model.",
        ),
        example=_code(
            """
            policy.model.compile()  # default mode: hundreds of kernel launches per call
            """
        ),
        use_instead=_code(
            """
            policy.model.compile(mode="reduce-overhead")  # CUDA graphs: one replay per graph
            # keep input shapes fixed; if outputs are kept across calls, call
            # torch.compiler.cudagraph_mark_step_begin() before each step
            """
        ),
    ),
    Rule(
        code="CD202",
        name="eager-work-outside-compiled-region",
        title="Much of a compiled call runs outside compiled regions",
        default_severity=Severity.WARNING,
        what_it_does=_prose(
            "Measures how much of a compiled call's time falls outside `Torch-Compiled Region`",
            "profiler events: eager code between graph breaks, the optimizer step, gradient",
            "clipping, loss bookkeeping.",
        ),
        why_it_matters=_prose(
            "Only code inside a compiled region gets Inductor's fusion. When only the model's",
            "forward (and so its backward) is compiled, the optimizer step and `clip_grad_norm_`",
            "stay eager and launch several small kernels per parameter tensor every step, which",
            "caps the speedup of the whole step: ACT training on an H100 gained 1.10-1.18x while",
            "those ran eager.",
        ),
        example=_code(
            """
            policy.forward = torch.compile(policy.forward)
            loss, _ = policy.forward(batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 10.0)  # eager
            optimizer.step()  # eager: a loop over every parameter tensor
            """
        ),
        use_instead=_code(
            """
            @torch.compile
            def clip_and_step():
                torch.nn.utils.clip_grad_norm_(policy.parameters(), 10.0)
                optimizer.step()


            # or, on CUDA: torch.optim.AdamW(policy.parameters(), lr=1e-4, fused=True)
            """
        ),
    ),
    Rule(
        code="CD203",
        name="compile-time-cost",
        title="Compile time and the calls needed to earn it back",
        default_severity=Severity.INFO,
        what_it_does=_prose(
            "Sets each entry point's first-call compile time against the time compiling saves per",
            "call, and reports how many calls it takes to earn the compile back.",
        ),
        why_it_matters=_prose(
            "A cold Inductor compile of ACT took 28-50 s on a CPU and 153 s on an H100. A compile",
            "that saves 1 ms a call after 60 s of compiling pays off only after 60,000 calls: in a",
            "short evaluation, or a job that restarts often, it never does. A warm cache cuts the",
            "compile to a few seconds (about 8 s for ACT on a CPU).",
        ),
        example=_code(
            """
            # each new machine or container compiles from scratch
            policy.model.compile()
            """
        ),
        use_instead=_code(
            """
            import os

            os.environ["TORCHINDUCTOR_CACHE_DIR"] = "/persistent/inductor-cache"  # before compiling
            policy.model.compile()
            # or carry the artifacts along: torch.compiler.save_cache_artifacts() on one
            # machine, torch.compiler.load_cache_artifacts(blob) on the next
            """
        ),
    ),
    Rule(
        code="CD204",
        name="insufficient-speedup",
        title="Compiled code ran but is not faster than the threshold",
        default_severity=Severity.WARNING,
        what_it_does=_prose(
            "Flags a speedup at or below the success threshold (1.1x) for an entry point whose",
            "compiled code did run, with the time per call of each side, and names the probes",
            "that tell its possible causes apart: graph breaks, recompiles, a launch-bound GPU,",
            "eager work outside the compiled region.",
        ),
        why_it_matters=_prose(
            "A compile that does not pay off costs compile time and a second code path for",
            "nothing. The ratio alone does not say why, and the remedies differ: removing a",
            'break, marking a size dynamic, `mode="reduce-overhead"`, compiling the optimizer',
            "step. Measure which one applies before changing anything.",
        ),
        example=_code(
            """
            policy.model.compile()
            # eager 22.3 ms, compiled 24.1 ms per call: 0.93x
            """
        ),
        use_instead=_code(
            """
            compile-diagnose act  # breaks, recompiles, kernel timing and what-if runs
            """
        ),
    ),
    Rule(
        code="CD301",
        name="rng-divergence",
        title="Eager and compiled draw different random numbers",
        default_severity=Severity.INFO,
        what_it_does=_prose(
            "Compares eager and compiled outputs (loss, gradients) from the same seed three ways:",
            "with random ops as they are, with `torch._inductor.config.fallback_random = True`,",
            "and with every dropout off. When the difference falls to rounding level in the last",
            "two, random numbers explain it. Where those what-ifs did not run (on a CPU unless",
            "`--rng-what-if`: each is one more compile of the training step), it reports random",
            "numbers as the likely cause, with medium confidence, when training fails with dropout",
            "active and inference in eval mode passes. In triage, flags a failed training-loss",
            "check of a policy whose training forward draws random numbers.",
        ),
        why_it_matters=_prose(
            "Inductor generates random numbers in its own kernels, not with eager's generator, so",
            "`torch.manual_seed(42)` before each side still gives different dropout masks and",
            "noise. The outputs then differ although both programs are correct: ACT's training",
            "loss (dropout 0.1) differed by 1.75e-3 as is and by 1.2e-7 with `fallback_random`",
            "or with dropout off. A train-mode correctness check measures the random numbers, not",
            "the compiler.",
        ),
        example=_code(
            """
            policy.train()  # dropout active
            torch.manual_seed(42)
            loss_eager, _ = policy.forward(batch)
            torch.manual_seed(42)
            loss_compiled, _ = compiled_forward(batch)
            assert abs(loss_eager - loss_compiled) < 1e-5  # fails: other dropout masks
            """
        ),
        use_instead=_code(
            """
            import torch._inductor.config as inductor_config

            inductor_config.fallback_random = True  # before compiling; for comparisons only
            torch.manual_seed(42)
            loss_eager, _ = policy.forward(batch)
            torch.manual_seed(42)
            loss_compiled, _ = compiled_forward(batch)  # same masks as eager
            """
        ),
    ),
    Rule(
        code="CD302",
        name="numerical-divergence",
        title="Compiled output is further from fp64 than eager is",
        default_severity=Severity.ERROR,
        what_it_does=_prose(
            "Compares eager and compiled each against an fp64 eager reference. When compiled's",
            "error is beyond a small multiple of eager's own, it walks the modules in execution",
            "order, names the first one that adds error (not the last one that carries it), and",
            "compiles that module alone to confirm it.",
        ),
        why_it_matters=_prose(
            "Eager fp32 is itself off by rounding, and a compiled program that reorders sums and",
            "fuses ops is off by the same order. An error well beyond eager's own is not rounding:",
            "a miscompile, a precision change (TF32, reduced-precision reductions) or an op that",
            "Inductor lowers differently. It changes what the policy does and is worth a minimal",
            "repro upstream.",
        ),
        example=_code(
            """
            reference = fp64_policy.model(batch_fp64)[0]
            err_eager = (policy.model(batch)[0].double() - reference).abs().max()  # 1e-6
            err_compiled = (compiled(batch)[0].double() - reference).abs().max()  # 5e-2
            """
        ),
        use_instead=_code(
            """
            # compile the first divergent module alone to confirm it
            layer = policy.model.encoder.layers[0]
            torch.testing.assert_close(torch.compile(layer)(x), layer(x))
            # then minimise it: TORCHDYNAMO_REPRO_AFTER="aot" TORCHDYNAMO_REPRO_LEVEL=4
            """
        ),
    ),
    Rule(
        code="CD303",
        name="tolerance-too-strict",
        title="An absolute tolerance below rounding noise",
        default_severity=Severity.INFO,
        what_it_does=_prose(
            "Flags a failed absolute threshold where compiled is as close to an fp64 reference as",
            "eager is. In triage, flags an absolute threshold on a loss or an action that lies",
            "within the rounding noise of fp32 on the report's device.",
        ),
        why_it_matters=_prose(
            "A compiled program reorders reductions and fuses operations, so its fp32 results",
            "differ from eager's in the last bits, and by more on GPUs that use TF32. On a loss of",
            "order 1, an absolute 1e-5 is about a hundred units in the last place of fp32: less",
            "than two correct programs differ after millions of multiply-adds (ACT's training",
            "loss on an H100 differed by 3.7e-4 relative with random numbers taken out). Such a",
            "threshold fails correct programs; PyTorch's own benchmarks compare each side with an",
            "fp64 reference instead (`torch._dynamo.utils.same`, compiled within 2-3x of eager's",
            "RMSE).",
        ),
        example=_code(
            """
            assert abs(loss_eager - loss_compiled) < 1e-5  # absolute, whatever the scale
            """
        ),
        use_instead=_code(
            """
            reference = fp64_policy.forward(batch_fp64)[0]  # eager in float64
            err_eager = abs(loss_eager.double() - reference)
            err_compiled = abs(loss_compiled.double() - reference)
            assert err_compiled <= 3 * err_eager + 1e-7  # as close to fp64 as eager is
            """
        ),
    ),
    Rule(
        code="CD304",
        name="precision-setting-mismatch",
        title="A precision setting explains the difference",
        default_severity=Severity.WARNING,
        what_it_does=_prose(
            "Records the numeric settings of every run (TF32 / `fp32_precision`,",
            "`torch.get_float32_matmul_precision()`, cuDNN TF32, deterministic algorithms) and, on",
            "CUDA, repeats the eager/compiled comparison with TF32 off on both sides and on on",
            "both sides.",
        ),
        why_it_matters=_prose(
            "TF32 keeps 10 mantissa bits of matmul and convolution inputs, about 1e-3 relative",
            "error per product. When the two sides of a comparison run under different settings",
            "(a flag set between the eager and the compiled run, or Inductor's generated matmuls",
            "reading the setting at compile time while eager reads it at each call), the",
            "difference looks like a miscompile but is a setting.",
        ),
        example=_code(
            """
            out_eager = policy.model(batch)  # TF32 off
            torch.set_float32_matmul_precision("high")  # TF32 on from here
            out_compiled = compiled(batch)  # compared at another precision
            """
        ),
        use_instead=_code(
            """
            torch.set_float32_matmul_precision("highest")  # the same for both sides
            torch.backends.cudnn.allow_tf32 = False
            out_eager = policy.model(batch)
            out_compiled = compiled(batch)
            """
        ),
    ),
    Rule(
        code="CD401",
        name="benchmark-methodology",
        title="A measurement cannot mean what it claims",
        default_severity=Severity.WARNING,
        what_it_does=_prose(
            "Checks how each figure was measured against what its label claims: eager and",
            "compiled copies that share weights, buffers or an action queue; actions compared at",
            "different steps of a chunk (a stale queue); a consistency figure computed over two",
            "training runs in different states; timing without warm-up, without device",
            "synchronisation, one side after the other instead of interleaved, or without a",
            "spread.",
        ),
        why_it_matters=_prose(
            "A figure measured the wrong way answers another question than its label. In the",
            "script that wrote LeRobot's reference report, `torch.compile(policy)` shared weights",
            "and the action queue with eager: an earlier report compared step 0 of a chunk with",
            "step 1 (5.6e-2, 'SEVERE'); the loss and grad-norm consistency compared eager's",
            "training run with a compiled run that went on training the already-trained weights",
            "with other random numbers; timing ran eager in full, then compiled, and quoted one",
            "mean without a spread.",
        ),
        example=_code(
            """
            policy_compiled = torch.compile(policy)  # the same object: weights, queue shared
            eager_losses = [train_step(policy) for _ in range(50)]
            compiled_losses = [train_step(policy_compiled) for _ in range(50)]  # trains on
            loss_consistency = mean(abs(e - c) for e, c in zip(eager_losses, compiled_losses))
            """
        ),
        use_instead=_code(
            """
            policy_compiled = copy.deepcopy(policy)  # same start, nothing shared
            policy_compiled.forward = torch.compile(policy_compiled.forward)
            policy.reset()
            policy_compiled.reset()  # same queue state before comparing actions
            # time eager and compiled interleaved, synchronise, quote median and IQR:
            print(torch.utils.benchmark.Timer("f()", globals={"f": f}).blocked_autorange())
            """
        ),
    ),
    Rule(
        code="CD501",
        name="probe-failed",
        title="A probe could not finish",
        default_severity=Severity.WARNING,
        what_it_does="Reports a probe that raised, with the first line of its error, while the "
        "other probes went on.",
        why_it_matters=_prose(
            "The findings that need that probe's measurements are missing from the diagnosis: a",
            "diagnosis that looks clean may only be incomplete.",
        ),
        example=_code(
            """
            # kernel-timing probe at batch 64 on a 24 GB GPU:
            # torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB
            """
        ),
        use_instead=_code(
            """
            compile-diagnose act --batch-size 8  # a batch that fits, or skip that probe
            """
        ),
    ),
)

_BY_NAME = {rule.name: rule for rule in RULES}
_BY_CODE = {rule.code: rule for rule in RULES}

# Snippets that are shell commands rather than Python, for syntax highlighting.
_SHELL_PREFIXES = ("compile-diagnose ", "export ", "$ ")


def rule_by_name(name: str) -> Rule:
    return _BY_NAME[name]


def lookup(code_or_name: str) -> Rule | None:
    """A rule by its code (case-insensitive) or its name."""
    return _BY_CODE.get(code_or_name.upper()) or _BY_NAME.get(code_or_name.lower())


def snippet_language(snippet: str) -> str:
    """ "shell" for a command line, "python" for anything else: how to highlight an example."""
    lines = [line for line in snippet.splitlines() if line.strip()]
    first = next((line for line in lines if not line.startswith("#")), "")
    return "shell" if first.startswith(_SHELL_PREFIXES) else "python"
