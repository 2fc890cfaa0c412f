// stores.h - the store back ends behind open_bayes_store(). Private to src/bayes.
#pragma once

#include "spamgate/bayes.h"

namespace spamgate {

// LMDB in cfg.path, created on first use; one handle per database per process.
Result<std::shared_ptr<BayesStore>> open_lmdb_store(const BayesConfig& cfg);
// Redis at cfg.redis; fails when the server does not answer PING.
Result<std::shared_ptr<BayesStore>> open_redis_store(const BayesConfig& cfg);

}  // namespace spamgate
