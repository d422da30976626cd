"""The RieszNet classifier of a third-party study of MNIST Large Scale, for the model-based check.

A model trained on 5,000 images of the published s = 1 file, whose weights and
correct counts on the published test files are public (docs/evidence.md), is
evaluated here on rebuilt images: if the rebuild equals the published files,
the counts agree within sampling error.

The architecture is re-typed from the description in the study's notebook
(``RieszNet-MNISTLargescale.ipynb``): five layers, each a bank of Riesz
transforms (first order along both axes and three second-order ones, applied
in the Fourier domain) followed by a 1 x 1 convolution, batch normalisation and
a ReLU; a final 1 x 1 convolution to the ten classes, a softmax over them, and
the class scores read at the frame's centre pixel.  Nothing is copied from the
notebook but the layer sizes; ``load_state_dict`` is strict, so a layer that
does not match the published weights fails at once.

Needs PyTorch (``make torch``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["riesz_kernels", "build_model", "load_model", "predict", "centre_scores"]

#: Channels after each layer's 1 x 1 convolution; the Riesz bank multiplies channels by 5.
CHANNELS = (12, 16, 24, 32, 80)
CLASSES = 10
RIESZ_TERMS = 5


def _frequency_axis(n: int) -> np.ndarray:
    """Centred frequencies of an axis of n samples, ``(i - n // 2) / (n - n % 2)``, as the study lays them out."""
    return (np.arange(n) - n // 2) / (n - n % 2)


def riesz_kernels(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """First-order Riesz multipliers along rows and columns on the centred (fftshifted) frequency grid.

    Returns
    -------
    (ry, rx) : two (height, width) complex128 arrays
        ``-1j * f_axis / |f|``, zero where ``|f|^2 <= 1e-8`` (the zero frequency).
    """
    fy = _frequency_axis(height)[:, None]
    fx = _frequency_axis(width)[None, :]
    norm2 = fy * fy + fx * fx
    keep = norm2 > 1e-8
    norm = np.sqrt(np.where(keep, norm2, 1.0))
    ry = np.where(keep, -1j * fy / norm, 0.0)
    rx = np.where(keep, -1j * fx / norm, 0.0)
    return np.broadcast_to(ry, (height, width)).astype(np.complex128), np.broadcast_to(rx, (height, width)).astype(np.complex128)


def build_model():
    """The network, untrained, in float64 (``torch.nn.Module``; input (n, 1, H, W), output (n, 10) class scores)."""
    import torch
    from torch import nn

    class RieszBank(nn.Module):
        """Five Riesz transforms of every channel: R_y, R_x, and -R_y R_y, -R_y R_x, -R_x R_x (in the study's order)."""

        def __init__(self) -> None:
            super().__init__()
            self._shape = None

        def _multipliers(self, height: int, width: int):
            if self._shape != (height, width):
                ry, rx = riesz_kernels(height, width)
                self._ry, self._rx, self._shape = torch.from_numpy(ry), torch.from_numpy(rx), (height, width)
            return self._ry, self._rx

        def forward(self, x):
            ry, rx = self._multipliers(x.shape[2], x.shape[3])
            spectrum = torch.fft.fftshift(torch.fft.fft2(x), dim=(2, 3))
            first_y = spectrum * ry
            first_x = spectrum * rx
            terms = (first_y, first_x, -(first_y * ry), -(first_x * ry), -(first_x * rx))
            stacked = torch.fft.ifftshift(torch.cat(terms, dim=1), dim=(2, 3))
            return torch.real(torch.fft.ifft2(stacked)).double()

    class RieszNetwork(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            inputs = (1, *CHANNELS[:-1])
            for k, (n_in, n_out) in enumerate(zip(inputs, CHANNELS, strict=True), start=1):
                setattr(self, f"conv{k}", nn.Conv2d(RIESZ_TERMS * n_in, n_out, kernel_size=1))
                setattr(self, f"bn{k}", nn.BatchNorm2d(n_out, affine=True))
            setattr(self, f"conv{len(CHANNELS) + 1}", nn.Conv2d(CHANNELS[-1], CLASSES, kernel_size=1))
            self.bank = RieszBank()

        def forward(self, x):
            for k in range(1, len(CHANNELS) + 1):
                x = torch.relu(getattr(self, f"bn{k}")(getattr(self, f"conv{k}")(self.bank(x))))
            scores = torch.softmax(getattr(self, f"conv{len(CHANNELS) + 1}")(x), dim=1)
            return scores[:, :, x.shape[2] // 2, x.shape[2] // 2]

    return RieszNetwork().double()


def load_model(weights_path: str):
    """The network with the published weights (``torch.load(..., weights_only=True)``, strict), in eval mode."""
    import torch

    model = build_model()
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _term_multipliers(height: int, width: int) -> np.ndarray:
    """The bank's five multipliers on the unshifted frequency grid: (5, H, W) complex128."""
    ry, rx = (np.fft.ifftshift(kernel) for kernel in riesz_kernels(height, width))
    return np.stack([ry, rx, -(ry * ry), -(rx * ry), -(rx * rx)])


def _hermitian_half(multipliers: np.ndarray):
    """``(M(k) + conj(M(-k))) / 2`` on the half spectrum of ``rfft2``: (5, H, W // 2 + 1), a torch tensor.

    The model keeps the real part of each inverse transform; for a real input X,
    ``Re ifft2(M X) = ifft2(M' X)`` with M' this Hermitian part of M, so the
    real transforms (``rfft2``, ``irfft2``) give the same values at half the work.
    """
    import torch

    reflected = np.conj(np.roll(multipliers[:, ::-1, ::-1], 1, axis=(1, 2)))  # M(-k) on the same grid
    return torch.from_numpy(np.ascontiguousarray(((multipliers + reflected) / 2)[:, :, : multipliers.shape[2] // 2 + 1]))


def _normalised(values, model, k: int):
    """Bias of convolution k, then its batch normalisation (eval mode) and ReLU, on (n, C, ...) values."""
    import torch

    bn = getattr(model, f"bn{k}")
    shape = (1, -1) + (1,) * (values.dim() - 2)
    values = values + getattr(model, f"conv{k}").bias.view(shape)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return torch.relu((values - bn.running_mean.view(shape)) * scale.view(shape) + bn.bias.view(shape))


def _mixed(spectrum, weight, multipliers):
    """``sum_t M_t (W_t X)``: (n, out, H, W) complex from (n, in, H, W) spectra and a (out, 5 in, 1, 1) weight.

    The real weights act on the real and imaginary parts at once, as one real matrix product.
    """
    import torch

    n, c_in, height, width = spectrum.shape
    weight = weight[:, :, 0, 0].reshape(weight.shape[0], RIESZ_TERMS, c_in)
    parts = torch.view_as_real(spectrum).permute(1, 0, 2, 3, 4).reshape(c_in, -1)  # (in, n H W 2)
    total = None
    for t in range(RIESZ_TERMS):
        term = torch.view_as_complex((weight[:, t] @ parts).reshape(-1, n, height, width, 2)) * multipliers[t]
        total = term if total is None else total.add_(term)
    return total.transpose(0, 1)


def centre_scores(model, images):
    """Class logits at the frame's centre, computed in the Fourier domain (same model, less work).

    The bank and the 1 x 1 convolution after it are linear, so they are applied as
    one mixing of the input channels' spectra (``sum_t M_t W_t X``) followed by one
    inverse transform per output channel, on the half spectrum of real transforms
    (``_hermitian_half``); the last layer is evaluated at the centre pixel only,
    which is all the model reads.  Equal to ``model(images)``
    up to float64 rounding and the (monotone) softmax.

    Parameters
    ----------
    model : the network of ``build_model`` (weights loaded)
    images : (n, 1, H, W) float tensor

    Returns
    -------
    (n, 10) float64 tensor
    """
    import torch

    height, width = images.shape[2], images.shape[3]
    full = _term_multipliers(height, width)
    multipliers = torch.from_numpy(full)
    half = _hermitian_half(full)
    # The first transform in the input's precision (float32 images: a complex64 spectrum, Hermitian only
    # to float32 rounding), as in the study, so the first layer takes the real part of full transforms.
    spectrum = torch.fft.fft2(images).to(torch.complex128)
    x = _normalised(torch.real(torch.fft.ifft2(_mixed(spectrum, model.conv1.weight, multipliers))), model, 1)
    spectrum = torch.fft.rfft2(x)
    for k in range(2, len(CHANNELS)):
        mixed = _mixed(spectrum, getattr(model, f"conv{k}").weight, half)
        x = _normalised(torch.fft.irfft2(mixed, s=(height, width)), model, k)
        spectrum = torch.fft.fft2(x) if k == len(CHANNELS) - 1 else torch.fft.rfft2(x)
    last = len(CHANNELS)
    centre = x.shape[2] // 2
    fy = torch.arange(height, dtype=torch.float64)[:, None] * (centre / height)
    fx = torch.arange(width, dtype=torch.float64)[None, :] * (centre / width)
    phase = torch.exp(2j * np.pi * (fy + fx)) / (height * width)
    probes = (multipliers * phase).reshape(RIESZ_TERMS, -1).T  # (HW, term)
    spectrum = spectrum.reshape(x.shape[0], x.shape[1], -1)
    at_centre = torch.real(spectrum @ probes).transpose(1, 2).reshape(x.shape[0], -1)  # (n, term * in)
    features = _normalised(at_centre @ getattr(model, f"conv{last}").weight[:, :, 0, 0].T, model, last)
    head = getattr(model, f"conv{last + 1}")
    return features @ head.weight[:, :, 0, 0].T + head.bias


def predict(model, images: np.ndarray, batch: int = 20) -> np.ndarray:
    """Predicted classes of ``(n, H, W)`` images by ``centre_scores``.

    The images are rounded to float32 first, as the study's test loop reads the files.
    """
    import torch

    out = np.empty(len(images), dtype=np.int64)
    with torch.no_grad():
        for start in range(0, len(images), batch):
            chunk = torch.from_numpy(np.ascontiguousarray(images[start : start + batch], dtype=np.float32))[:, None]
            out[start : start + len(chunk)] = torch.argmax(centre_scores(model, chunk), dim=1).numpy()
    return out
