#include "agent/table.hpp"

#include "core/json.hpp"

namespace agent {

void MetricTable::set_gauge(std::string_view name, double value)
{
    if (auto it = gauges_.find(name); it != gauges_.end())
        it->second = value;
    else
        gauges_.emplace(std::string{name}, value);
}

void MetricTable::add_counter(std::string_view name, std::int64_t delta)
{
    if (auto it = counters_.find(name); it != counters_.end())
        it->second += delta;
    else
        counters_.emplace(std::string{name}, delta);
}

const double* MetricTable::gauge(std::string_view name) const
{
    auto it = gauges_.find(name);
    return it == gauges_.end() ? nullptr : &it->second;
}

std::int64_t MetricTable::counter(std::string_view name) const
{
    auto it = counters_.find(name);
    return it == counters_.end() ? 0 : it->second;
}

Batch MetricTable::take_batch()
{
    Batch batch;
    batch.sequence = next_sequence_++;
    views_.clear();
    for (const auto& [name, value] : gauges_)
        views_.push_back(core::Metric::gauge(name, value));
    batch.counters.reserve(counters_.size());
    for (auto& [name, delta] : counters_) {
        views_.push_back(core::Metric::counter(name, delta));
        batch.counters.emplace_back(name, delta);
        delta = 0;
    }
    json_.clear();
    core::write_json(json_, std::span<const core::Metric>{views_});
    batch.body.assign(json_.data(), json_.size());
    return batch;
}

void MetricTable::give_back(const Batch& batch)
{
    for (const auto& [name, delta] : batch.counters)
        add_counter(name, delta);
}

}  // namespace agent
