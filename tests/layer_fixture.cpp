#include "layer_fixture.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "moe/error.h"

namespace moe::test {

static void load_into(const SafetensorsFile& f, const std::string& name, const TensorView& t) {
    std::vector<float> v = f.f32(name);
    if (int64_t(v.size()) != t.numel())
        throw Error("[fixture] " + name + " has " + std::to_string(v.size()) + " values, expected " +
                    std::to_string(t.numel()));
    std::memcpy(t.data, v.data(), v.size() * 4);
}

LayerFixture::LayerFixture(const std::string& name, const std::string& prefix)
    : file(std::string(MOE_FIXTURE_DIR) + "/" + prefix + name + ".safetensors") {
    auto i = [&](const char* k) { return std::stoll(file.meta(k)); };
    T = i("T");
    cfg.d_model = i("D");
    cfg.d_ff = i("F");
    cfg.n_experts = i("E");
    cfg.top_k = i("K");
    cfg.n_shared = i("S");
    cfg.d_ff_shared = cfg.n_shared > 0 ? i("Fs") : 0;
    cfg.renormalize = file.meta("renormalize") == "1";
    cfg.capacity_factor = std::stod(file.meta("capacity_factor"));
    aux_coef = std::stof(file.meta("aux_coef"));
    z_coef = std::stof(file.meta("z_coef"));
    if (file.metadata().count("router")) {
        RouterConfig& r = cfg.router;
        r.kind = parse_router_kind(file.meta("router"));
        r.norm_p = std::stod(file.meta("norm_p"));
        r.routed_scaling_factor = std::stod(file.meta("routed_scaling_factor"));
        r.n_group = i("n_group");
        r.topk_group = i("topk_group");
        r.seq_len = i("seq_len");
        if (file.metadata().count("sinkhorn_iters")) r.sinkhorn_iters = i("sinkhorn_iters");
        cfg.shared_gate = file.metadata().count("shared_gate") && file.meta("shared_gate") == "1";
        if (file.metadata().count("slots_per_expert")) r.slots_per_expert = i("slots_per_expert");
        if (file.metadata().count("router_dim")) r.router_dim = i("router_dim");
        if (file.metadata().count("dselect_gamma")) r.dselect_gamma = std::stod(file.meta("dselect_gamma"));
        r.top_p = std::stod(file.meta("top_p"));
        r.router_jitter_noise = std::stod(file.meta("jitter"));
        r.seed = uint64_t(i("seed"));
        entropy_coef = std::stof(file.meta("entropy_coef"));
        noise.given = true;
        if (file.has("router.noise")) noise.normal = file.f32("router.noise");
        if (file.has("router.uniform")) noise.uniform = file.f32("router.uniform");
        if (file.has("router.jitter")) noise.jitter = file.f32("router.jitter");
        if (file.has("token_ids")) token_ids = file.i32("token_ids");
    }
    MoeLayerParamSlots ps = moe_layer_params_reserve(param_arena, cfg);
    MoeLayerParamSlots gs = moe_layer_params_reserve(grad_arena, cfg);
    param_arena.allocate();
    grad_arena.allocate();
    params = moe_layer_params_point(param_arena, ps);
    grads = moe_layer_params_point(grad_arena, gs);
    load_into(file, "router.weight", params.router);
    if (file.has("router.noise_weight")) load_into(file, "router.noise_weight", params.router_noise);
    if (file.has("router.bias")) load_into(file, "router.bias", params.router_bias);
    if (file.has("router.proj")) load_into(file, "router.proj", params.router_proj);
    if (file.has("router.temperature")) load_into(file, "router.temperature", params.router_temp);
    load_into(file, "experts.w1", params.w1);
    load_into(file, "experts.w3", params.w3);
    load_into(file, "experts.w2", params.w2);
    if (cfg.n_shared > 0) {
        load_into(file, "shared.w1", params.ws1);
        load_into(file, "shared.w3", params.ws3);
        load_into(file, "shared.w2", params.ws2);
        if (file.has("shared.gate")) load_into(file, "shared.gate", params.ws_gate);
    }
    x = Buffer(DType::f32, {T, cfg.d_model});
    dy = Buffer(DType::f32, {T, cfg.d_model});
    load_into(file, "x", x.view());
    load_into(file, "dy", dy.view());
}

AdamWConfig adamw_config_from(const SafetensorsFile& f) {
    auto d = [&](const char* k) { return std::stod(f.meta(k)); };
    AdamWConfig c;
    c.lr = d("lr");
    c.lr_min = d("lr_min");
    c.warmup = std::stoll(f.meta("warmup"));
    c.total = std::stoll(f.meta("total"));
    c.beta1 = d("beta1");
    c.beta2 = d("beta2");
    c.eps = d("eps");
    c.weight_decay = d("weight_decay");
    c.max_norm = d("max_norm");
    return c;
}

std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

double scaled_max_error(const float* got, const std::vector<float>& want) {
    double err = 0, scale = 1e-12;
    for (size_t i = 0; i < want.size(); ++i) {
        err = std::max(err, std::fabs(double(got[i]) - want[i]));
        scale = std::max(scale, std::fabs(double(want[i])));
    }
    return err / scale;
}

}  // namespace moe::test
