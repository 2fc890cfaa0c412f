// meta.h - SpamAssassin meta expressions: && || ! ( ), sums and comparisons.
//
// parse_meta() turns "(A + B + C) > 1 && !D" into a tree; eval() computes it
// with symbol values (1 for a hit, 0 otherwise) as Perl would. A MetaExpr is
// immutable after parsing: thread-safe to evaluate concurrently.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "spamgate/status.h"

namespace spamgate {

class MetaExpr {
 public:
  enum class Kind { kNum, kSym, kNot, kNeg, kAnd, kOr, kAdd, kSub, kMul, kDiv,
                    kGt, kLt, kGe, kLe, kEq, kNe };
  Kind kind = Kind::kNum;
  double num = 0;
  std::string sym;
  std::unique_ptr<MetaExpr> a, b;

  double eval(const std::function<double(const std::string&)>& value) const;
  // A binary operator on two operand values, as eval() computes it (Perl's
  // && and || give the deciding operand; division by zero gives 0).
  static double apply(Kind k, double a, double b);
  // Every symbol named in the expression (duplicates possible).
  void symbols(std::vector<std::string>& out) const;
};

// Parses `text`; errors say what was expected and where (1-based column).
Result<std::unique_ptr<MetaExpr>> parse_meta(std::string_view text);

}  // namespace spamgate
