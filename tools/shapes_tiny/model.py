"""shapes-tiny: a small text encoder and a text-conditional pixel-space UNet (32x32x3, epsilon).

Written to export to unfused ONNX: attention is explicit softmax(q k^T * scale) v, so every
cross-attention layer (`.../attn2/...`) has one Softmax node of shape [B*heads, HW, context].
Runs on torch 1.13 (export, here) and torch 2.x (training, GPU). Module names follow diffusers'
layout (down_blocks.N.attentions.0.transformer_blocks.0.attn2) so node names look like SD's.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_CONFIG = {
    "vocab_size": 569,
    "context_length": 16,
    "text_width": 96,
    "text_layers": 2,
    "text_heads": 4,
    "channels": [64, 96, 96],  # at 32x32, 16x16, 8x8
    "attention_levels": [False, True, True],
    "heads": 4,
    "time_dim": 128,
    "groups": 16,
    "eos_id": 568,
}


class Attention(nn.Module):
    """Multi-head attention with the softmax written out (no fused kernels)."""

    def __init__(self, dim, context_dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def _split(self, x):
        b, n, c = x.shape
        h = self.heads
        return x.reshape(b, n, h, c // h).permute(0, 2, 1, 3).reshape(b * h, n, c // h)

    def forward(self, x, context=None):
        context = x if context is None else context
        b, n, c = x.shape
        q = self._split(self.to_q(x))
        k = self._split(self.to_k(context))
        v = self._split(self.to_v(context))
        scores = torch.bmm(q, k.transpose(1, 2)) * self.scale
        probs = scores.softmax(dim=-1)  # [B*heads, n, context]
        out = torch.bmm(probs, v)
        out = out.reshape(b, self.heads, n, c // self.heads).permute(0, 2, 1, 3).reshape(b, n, c)
        return self.to_out(out)


class GEGLU(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.proj = nn.Linear(dim, hidden * 2)

    def forward(self, x):
        a, gate = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(gate)


class BasicTransformerBlock(nn.Module):
    """Self-attention (attn1), cross-attention to the text (attn2), GEGLU feed-forward."""

    def __init__(self, dim, context_dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, context_dim, heads)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(GEGLU(dim, dim * 2), nn.Linear(dim * 2, dim))

    def forward(self, x, context):
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class Transformer2D(nn.Module):
    def __init__(self, dim, context_dim, heads, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, dim)
        self.proj_in = nn.Linear(dim, dim)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(dim, context_dim, heads)])
        self.proj_out = nn.Linear(dim, dim)

    def forward(self, x, context):
        b, c, h, w = x.shape
        residual = x
        y = self.norm(x).permute(0, 2, 3, 1).reshape(b, h * w, c)
        y = self.proj_in(y)
        for block in self.transformer_blocks:
            y = block(y, context)
        y = self.proj_out(y).reshape(b, h, w, c).permute(0, 3, 1, 2)
        return y + residual


class ResnetBlock(nn.Module):
    def __init__(self, cin, cout, time_dim, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(time_dim, cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        skip = x if self.conv_shortcut is None else self.conv_shortcut(x)
        return skip + h


class Level(nn.Module):
    """One resolution level: a ResnetBlock, optionally followed by a Transformer2D."""

    def __init__(self, cin, cout, attention, cfg):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(cin, cout, cfg["time_dim"], cfg["groups"])])
        self.attentions = nn.ModuleList(
            [Transformer2D(cout, cfg["text_width"], cfg["heads"], cfg["groups"])] if attention else [])

    def forward(self, x, temb, context):
        x = self.resnets[0](x, temb)
        for attn in self.attentions:
            x = attn(x, context)
        return x


def timestep_embedding(t, dim):
    """Sinusoidal embedding of integer timesteps t in [0, 999] (cos first, as diffusers with
    flip_sin_to_cos=True, freq_shift=0)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.to(torch.float32)[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class UNet(nn.Module):
    """(sample [B,3,32,32], timestep int64 [B], encoder_hidden_states [B,L,D]) -> epsilon."""

    def __init__(self, cfg):
        super().__init__()
        ch = cfg["channels"]
        att = cfg["attention_levels"]
        self.base = ch[0]
        self.time_embedding = nn.Sequential(
            nn.Linear(ch[0], cfg["time_dim"]), nn.SiLU(), nn.Linear(cfg["time_dim"], cfg["time_dim"]))
        self.conv_in = nn.Conv2d(3, ch[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        self.downsamplers = nn.ModuleList()
        cin = ch[0]
        for i, c in enumerate(ch):
            self.down_blocks.append(Level(cin, c, att[i], cfg))
            cin = c
            if i < len(ch) - 1:
                self.downsamplers.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.mid_block = Level(ch[-1], ch[-1], False, cfg)
        # up path: nearest 2x upsampling, concatenated with the skip, then the level's ResnetBlock
        self.up_blocks = nn.ModuleList()
        cin = ch[-1]
        for i in reversed(range(len(ch))):
            self.up_blocks.append(Level(cin + ch[i], ch[i], att[i], cfg))
            cin = ch[i]
        self.conv_norm_out = nn.GroupNorm(cfg["groups"], ch[0])
        self.conv_out = nn.Conv2d(ch[0], 3, 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states):
        temb = self.time_embedding(timestep_embedding(timestep, self.base))
        x = self.conv_in(sample)
        skips = []
        for i, block in enumerate(self.down_blocks):
            x = block(x, temb, encoder_hidden_states)
            skips.append(x)
            if i < len(self.downsamplers):
                x = self.downsamplers[i](x)
        x = self.mid_block(x, temb, encoder_hidden_states)
        for i, block in enumerate(self.up_blocks):
            if i > 0:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = block(torch.cat([x, skips.pop()], dim=1), temb, encoder_hidden_states)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class EncoderLayer(nn.Module):
    """Pre-LayerNorm transformer layer, bidirectional (every token sees the whole prompt)."""

    def __init__(self, width, heads):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(width)
        self.self_attn = Attention(width, width, heads)
        self.layer_norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, width * 2), nn.GELU(), nn.Linear(width * 2, width))

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class TextEncoder(nn.Module):
    """input_ids int64 [B,L] -> (last_hidden_state [B,L,D], pooler_output [B,D] at the first EOS)."""

    def __init__(self, cfg):
        super().__init__()
        self.token_embedding = nn.Embedding(cfg["vocab_size"], cfg["text_width"])
        self.position_embedding = nn.Parameter(torch.zeros(cfg["context_length"], cfg["text_width"]))
        self.layers = nn.ModuleList([EncoderLayer(cfg["text_width"], cfg["text_heads"])
                                     for _ in range(cfg["text_layers"])])
        self.final_layer_norm = nn.LayerNorm(cfg["text_width"])
        nn.init.normal_(self.position_embedding, std=0.02)
        nn.init.normal_(self.token_embedding.weight, std=0.02)

    def forward(self, input_ids):
        x = self.token_embedding(input_ids) + self.position_embedding[None]
        for layer in self.layers:
            x = layer(x)
        x = self.final_layer_norm(x)
        # the EOS id is the largest id, so (as in CLIP) argmax finds the first EOS
        eos = input_ids.argmax(dim=-1)
        pooled = x[torch.arange(x.shape[0], device=x.device), eos]
        return x, pooled


class ShapesTiny(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = dict(cfg)
        self.text_encoder = TextEncoder(cfg)
        self.unet = UNet(cfg)

    def forward(self, sample, timestep, input_ids):
        context, _ = self.text_encoder(input_ids)
        return self.unet(sample, timestep, context)


def scaled_linear_schedule(steps=1000, beta_start=0.00085, beta_end=0.012):
    """SD's scaled_linear betas and cumulative alphas (float64)."""
    betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, steps, dtype=torch.float64) ** 2
    return betas, torch.cumprod(1.0 - betas, dim=0)


def count_parameters(module):
    return sum(p.numel() for p in module.parameters())


if __name__ == "__main__":
    m = ShapesTiny(DEFAULT_CONFIG)
    print("text encoder", count_parameters(m.text_encoder), "unet", count_parameters(m.unet),
          "total", count_parameters(m))
    x = torch.randn(2, 3, 32, 32)
    ids = torch.randint(0, 560, (2, 16))
    ids[:, 5] = 568
    print(m(x, torch.tensor([0, 999]), ids).shape)
