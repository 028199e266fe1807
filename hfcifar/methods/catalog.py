"""The plan: the rows of METHODS.md that have no method folder yet.

A row here is a promise, not a method: `hfcifar methods` lists it as "not implemented yet". When a method is built,
its folder's `__init__.py` declares the same facts as `METHOD = Method(...)`; the folder then shadows its row (delete
the row when convenient — tests/test_methods.py fails only when the two disagree on the number).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class PlannedMethod:
    number: int
    slug: str
    title: str
    ship: str
    claim: str
    family: str


PLANNED: tuple[PlannedMethod, ...] = (
    PlannedMethod(
        3,
        'quantum-creep',
        'Let the Quantum Creep In: Designing Quantum Neural Network Models by Gradually Swapping Out Classical Components',
        'simulated variational quantum layers (statevector in torch, no external simulator needed) with the same in/out types as the classical layers they replace, in a 3-layer net',
        'accuracy for 0…3 swapped layers, each above chance; the curve is reported',
        'training',
    ),
    PlannedMethod(
        4,
        'cifake',
        'CIFAKE: Image Classification and Explainable Identification of AI-Generated Synthetic Images',
        'real-vs-generated binary classifier + Grad-CAM',
        "real CIFAR vs images from the package's own generator: accuracy ≥ 90% held-out; Grad-CAM maps saved",
        'generative',
    ),
    PlannedMethod(
        6,
        'eagan',
        'EAGAN: Efficient Two-stage Evolutionary Architecture Search for GANs',
        'two-stage NSGA-II search: G with fixed D, then D with best G; Pareto fronts on size/IS/FID',
        'a tiny search runs both stages and returns a non-dominated front',
        'generative',
    ),
    PlannedMethod(
        8,
        'nasnet',
        'Learning Transferable Architectures for Scalable Image Recognition',
        'NASNet-A normal/reduction cells, ScheduledDropPath, CIFAR NASNet-A model; cell search-space sampler',
        'NASNet-A 6@768 has ≈3.3M parameters; ScheduledDropPath rate grows linearly; a small NASNet trains above a stated accuracy',
        'architecture-search',
    ),
    PlannedMethod(
        10,
        'salun',
        'SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency in Both Image Classification and Generation',
        'weight-saliency mask + random-label unlearning, for classifiers and conditional diffusion',
        "forgetting 10% random data: SalUn's average gap to retrain-from-scratch (UA, RA, TA, MIA) is smaller than fine-tune and gradient-ascent baselines",
        'unlearning-backdoor',
    ),
    PlannedMethod(
        11,
        'ddgan',
        'Tackling the Generative Learning Trilemma with Denoising Diffusion GANs',
        'denoising diffusion GAN: conditional GAN denoiser over T=4 steps',
        'samples with 4 NFE; sampling ≥ 200× faster than 1000-step DDPM with the same backbone',
        'generative',
    ),
    PlannedMethod(
        13,
        'mamba-pkd',
        'Mamba base PKD for efficient knowledge compression',
        'Mamba (selective state-space) blocks in plain torch; progressive distillation teacher→students',
        "accuracy vs FLOPs of the student chain is reported; the smallest student keeps ≥ 50% accuracy at ≤ 5% of teacher FLOPs (paper's CIFAR figure) or FAIL",
        'training',
    ),
    PlannedMethod(
        15,
        'cuda-unlearnable',
        'CUDA: Convolution-based Unlearnable Datasets',
        'CUDA dataset transform (class-wise random filters from a private key)',
        'training on CUDA data gives low clean test accuracy while clean training does not',
        'unlearning-backdoor',
    ),
    PlannedMethod(
        17,
        'snn-dynamic-confidence',
        'Unleashing the Potential of Spiking Neural Networks by Dynamic Confidence',
        'ANN→SNN conversion (IF neurons), Dynamic Confidence early termination',
        'average time steps drop ≥ 30% at ≤ 1 point accuracy loss (paper: 40% speed-up)',
        'training',
    ),
    PlannedMethod(
        18,
        'trojdiff',
        'TrojDiff: Trojan Attacks on Diffusion Models with Diverse Targets',
        'trojaned DDPM/DDIM training (In-D2D, Out-D2D, D2I targets) and triggered sampling',
        "triggered noise yields the target ≥ 90% of the time; benign samples don't",
        'generative',
    ),
    PlannedMethod(
        19,
        'man-local-learning',
        'Momentum Auxiliary Network for Supervised Local Learning',
        'supervised local learning with momentum (EMA) auxiliary networks + learnable biases',
        'lower peak training memory than end-to-end; accuracy ≥ plain local learning',
        'local-learning',
    ),
    PlannedMethod(
        22,
        'dass',
        'DASS: Differentiable Architecture Search for Sparse neural networks',
        'SparseConv/SparseLinear ops in a differentiable (DARTS-style) search space with a sparsity-aware objective',
        'at high sparsity the searched architecture beats a pruned dense baseline',
        'architecture-search',
    ),
    PlannedMethod(
        23,
        'ebyd',
        'Expose Before You Defend: Unifying and Enhancing Backdoor Defenses via Exposed Models',
        'Clean Unlearning exposure + detection/removal on the exposed model; a BadNets-style backdoor for testing',
        'after removal the attack success rate drops far (< 20%) with small clean-accuracy loss',
        'unlearning-backdoor',
    ),
    PlannedMethod(
        24,
        'cdrl',
        'Learning Energy-Based Models by Cooperative Diffusion Recovery Likelihood',
        'EBMs at increasing noise levels with initializer models, cooperative recovery-likelihood training',
        'trains and samples; recovery likelihood improves; samples saved',
        'generative',
    ),
    PlannedMethod(
        25,
        'ddo',
        'Direct Discriminative Optimization: Your Likelihood-Based Visual Generative Model is Secretly a GAN Discriminator',
        'Direct Discriminative Optimization fine-tuning of a diffusion model against a frozen reference',
        "a quality proxy (FID with the package's feature network) improves over the reference (paper: FID 1.79 → 1.30)",
        'generative',
    ),
    PlannedMethod(
        30,
        'fedossl',
        'Towards Unbiased Training in Federated Open-world Semi-supervised Learning',
        'federated open-world semi-supervised learning (uncertainty-aware loss, calibration) on simulated clients',
        'novel-class accuracy above a FedAvg baseline',
        'training',
    ),
    PlannedMethod(
        31,
        'transformer-local-learning',
        'Local Learning on Transformers via Feature Reconstruction',
        'local learning for a small ViT/Swin with feature-reconstruction decoders',
        'lower peak memory than end-to-end with 2 and 4 modules; accuracy reported',
        'local-learning',
    ),
    PlannedMethod(
        32,
        'fyi-dataset-distillation',
        'FYI: Flip Your Images for Dataset Distillation',
        'FYI flip trick as an option of the dataset-distillation trainers',
        'FYI + base method ≥ base method at the same images per class',
        'data-centric',
    ),
    PlannedMethod(
        33,
        'tesla',
        'Scaling Up Dataset Distillation to ImageNet-1K with Constant Memory',
        'memory-efficient trajectory-matching gradient + soft labels',
        'memory flat in unrolled steps while naive MTT grows; gradients equal naive backprop',
        'data-centric',
    ),
    PlannedMethod(
        34,
        'dcc',
        'Dataset Condensation with Contrastive Signals',
        'gradient-matching dataset condensation (DC) and DCC',
        'DCC ≥ DC at the same images per class',
        'data-centric',
    ),
    PlannedMethod(
        35,
        'deit-lt',
        'DeiT-LT Distillation Strikes Back for Vision Transformer Training on Long-Tailed Datasets',
        'ViT with DIST token, OOD distillation from a CNN teacher, CIFAR-10-LT builder',
        'tail-class accuracy above the same ViT without distillation',
        'training',
    ),
    PlannedMethod(
        37,
        'worst-case-forget-set',
        'Challenging Forgets: Unveiling the Worst-Case Forget Sets in Machine Unlearning',
        'bi-level search of the hardest forget set',
        'unlearning the searched set leaves it less erased than a random set of the same size',
        'unlearning-backdoor',
    ),
    PlannedMethod(
        39,
        'mlc-clustering',
        'Unsupervised Manifold Linearizing and Clustering',
        'Manifold Linearizing and Clustering (MCR² + doubly stochastic membership)',
        'clustering accuracy above k-means on the same features',
        'training',
    ),
    PlannedMethod(
        40,
        'eeea-net',
        'EEEA-Net: An Early Exit Evolutionary Neural Architecture Search',
        'evolutionary NAS with Early-Exit Population Initialisation',
        'every initial model respects the parameter threshold; search runs faster than without EE-PI',
        'architecture-search',
    ),
    PlannedMethod(
        43,
        'umd',
        'UMD: Unsupervised Model Detection for X2X Backdoor Attacks',
        'unsupervised X2X backdoor model detection',
        'flags backdoored models and not clean ones on a small set of trained models',
        'unlearning-backdoor',
    ),
    PlannedMethod(
        45,
        'multiview-hashing',
        'Deep Multi-View Enhancement Hashing for Image Retrieval',
        'multi-view enhancement hashing with memory network; mAP evaluation',
        'multi-view mAP above single-view',
        'training',
    ),
    PlannedMethod(
        46,
        'auglocal',
        'Scaling Supervised Local Learning with Augmented Auxiliary Networks',
        'AugLocal auxiliary networks (uniformly sampled subsequent layers, linearly shrinking depth)',
        'lower peak memory than backprop; accuracy close to backprop',
        'local-learning',
    ),
)
