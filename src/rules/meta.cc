// meta.cc - recursive-descent parser and evaluator for meta expressions.
//
// Grammar (Perl precedence, lowest first):
//   or  := and ('||' and)*          and := cmp ('&&' cmp)*
//   cmp := add (('>'|'<'|'>='|'<='|'=='|'!=') add)?
//   add := mul (('+'|'-') mul)*      mul := un (('*'|'/') un)*
//   un  := '!' un | '-' un | NUMBER | SYMBOL | '(' or ')'
// Nesting is capped (kMaxDepth) so a hostile rule file cannot overflow the stack.
#include "rules/meta.h"

#include <cctype>
#include <cstdlib>

namespace spamgate {
namespace {

constexpr int kMaxDepth = 200;

class Parser {
 public:
  explicit Parser(std::string_view t) : t_(t) {}

  Result<std::unique_ptr<MetaExpr>> run() {
    auto e = parse_or(0);
    if (!error_.empty()) return Status::InvalidArgument(error_);
    skip();
    if (pos_ != t_.size()) return Status::InvalidArgument(fail("unexpected '" + std::string(1, t_[pos_]) + "'"));
    return e;
  }

 private:
  using Ptr = std::unique_ptr<MetaExpr>;

  std::string fail(const std::string& what) {
    if (error_.empty()) error_ = "meta expression: " + what + " at column " + std::to_string(pos_ + 1);
    return error_;
  }
  void skip() {
    while (pos_ < t_.size() && std::isspace(static_cast<unsigned char>(t_[pos_]))) ++pos_;
  }
  bool eat(std::string_view op) {
    skip();
    if (t_.substr(pos_, op.size()) != op) return false;
    // Do not take '>' out of '>=' etc., nor '!' out of '!='.
    if (op.size() == 1 && pos_ + 1 < t_.size() && t_[pos_ + 1] == '=' &&
        (op == ">" || op == "<" || op == "!" || op == "="))
      return false;
    pos_ += op.size();
    return true;
  }
  static Ptr node(MetaExpr::Kind k, Ptr a, Ptr b) {
    auto n = std::make_unique<MetaExpr>();
    n->kind = k;
    n->a = std::move(a);
    n->b = std::move(b);
    return n;
  }
  Ptr parse_or(int d) {
    Ptr l = parse_and(d);
    while (error_.empty() && eat("||")) l = node(MetaExpr::Kind::kOr, std::move(l), parse_and(d));
    return l;
  }
  Ptr parse_and(int d) {
    Ptr l = parse_cmp(d);
    while (error_.empty() && eat("&&")) l = node(MetaExpr::Kind::kAnd, std::move(l), parse_cmp(d));
    return l;
  }
  Ptr parse_cmp(int d) {
    Ptr l = parse_add(d);
    static const std::pair<const char*, MetaExpr::Kind> kOps[] = {
        {">=", MetaExpr::Kind::kGe}, {"<=", MetaExpr::Kind::kLe}, {"==", MetaExpr::Kind::kEq},
        {"!=", MetaExpr::Kind::kNe}, {">", MetaExpr::Kind::kGt},  {"<", MetaExpr::Kind::kLt}};
    for (const auto& [op, kind] : kOps) {
      if (error_.empty() && eat(op)) return node(kind, std::move(l), parse_add(d));
    }
    return l;
  }
  Ptr parse_add(int d) {
    Ptr l = parse_mul(d);
    while (error_.empty()) {
      if (eat("+")) l = node(MetaExpr::Kind::kAdd, std::move(l), parse_mul(d));
      else if (eat("-")) l = node(MetaExpr::Kind::kSub, std::move(l), parse_mul(d));
      else break;
    }
    return l;
  }
  Ptr parse_mul(int d) {
    Ptr l = parse_unary(d);
    while (error_.empty()) {
      if (eat("*")) l = node(MetaExpr::Kind::kMul, std::move(l), parse_unary(d));
      else if (eat("/")) l = node(MetaExpr::Kind::kDiv, std::move(l), parse_unary(d));
      else break;
    }
    return l;
  }
  Ptr parse_unary(int d) {
    if (d > kMaxDepth) {
      fail("nested too deeply");
      return nullptr;
    }
    skip();
    if (eat("!")) return node(MetaExpr::Kind::kNot, parse_unary(d + 1), nullptr);
    if (eat("-")) return node(MetaExpr::Kind::kNeg, parse_unary(d + 1), nullptr);
    if (eat("(")) {
      Ptr e = parse_or(d + 1);
      if (error_.empty() && !eat(")")) fail("expected ')'");
      return e;
    }
    if (pos_ >= t_.size()) {
      fail("expression ends too early");
      return nullptr;
    }
    char c = t_[pos_];
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      std::size_t start = pos_;
      while (pos_ < t_.size() && (std::isdigit(static_cast<unsigned char>(t_[pos_])) || t_[pos_] == '.')) ++pos_;
      auto n = std::make_unique<MetaExpr>();
      n->kind = MetaExpr::Kind::kNum;
      n->num = std::strtod(std::string(t_.substr(start, pos_ - start)).c_str(), nullptr);
      return n;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::size_t start = pos_;
      while (pos_ < t_.size() && (std::isalnum(static_cast<unsigned char>(t_[pos_])) || t_[pos_] == '_')) ++pos_;
      auto n = std::make_unique<MetaExpr>();
      n->kind = MetaExpr::Kind::kSym;
      n->sym = std::string(t_.substr(start, pos_ - start));
      return n;
    }
    fail("unexpected '" + std::string(1, c) + "'");
    return nullptr;
  }

  std::string_view t_;
  std::size_t pos_ = 0;
  std::string error_;
};

}  // namespace

Result<std::unique_ptr<MetaExpr>> parse_meta(std::string_view text) { return Parser(text).run(); }

double MetaExpr::apply(Kind k, double a, double b) {
  switch (k) {
    case Kind::kAnd: return a == 0 ? a : b;
    case Kind::kOr: return a != 0 ? a : b;
    case Kind::kAdd: return a + b;
    case Kind::kSub: return a - b;
    case Kind::kMul: return a * b;
    case Kind::kDiv: return b == 0 ? 0 : a / b;
    case Kind::kGt: return a > b ? 1 : 0;
    case Kind::kLt: return a < b ? 1 : 0;
    case Kind::kGe: return a >= b ? 1 : 0;
    case Kind::kLe: return a <= b ? 1 : 0;
    case Kind::kEq: return a == b ? 1 : 0;
    case Kind::kNe: return a != b ? 1 : 0;
    default: return 0;
  }
}

double MetaExpr::eval(const std::function<double(const std::string&)>& value) const {
  switch (kind) {
    case Kind::kNum: return num;
    case Kind::kSym: return value(sym);
    case Kind::kNot: return a->eval(value) == 0 ? 1 : 0;
    case Kind::kNeg: return -a->eval(value);
    // Perl's: the value of the operand that decided ((A && B) is B's count).
    case Kind::kAnd: {
      double x = a->eval(value);
      return x == 0 ? x : b->eval(value);
    }
    case Kind::kOr: {
      double x = a->eval(value);
      return x != 0 ? x : b->eval(value);
    }
    default: return apply(kind, a->eval(value), b->eval(value));
  }
}

void MetaExpr::symbols(std::vector<std::string>& out) const {
  if (kind == Kind::kSym) out.push_back(sym);
  if (a) a->symbols(out);
  if (b) b->symbols(out);
}

}  // namespace spamgate
