// html.cc - HTML to text with libxml2 (see html.h).
//
// The tree is walked iteratively (no recursion), so a deeply nested hostile
// document cannot exhaust the stack.
#include "message/html.h"

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>

#include <strings.h>

#include <cstring>
#include <mutex>
#include <optional>

#include "util/c_handle.h"

namespace spamgate {
namespace {

bool name_is(const xmlNode* n, const char* name) {
  return n->name != nullptr && xmlStrcasecmp(n->name, reinterpret_cast<const xmlChar*>(name)) == 0;
}

bool is_block(const xmlNode* n) {
  static const char* const kBlocks[] = {"p",  "br", "div", "tr", "li", "h1", "h2", "h3", "h4",
                                        "h5", "h6", "table", "ul", "ol", "blockquote", "hr",
                                        "title", "td", "th", "pre", "form"};
  for (const char* b : kBlocks) {
    if (name_is(n, b)) return true;
  }
  return false;
}

// SpamAssassin's rendering (for its body rules): what an element puts in
// the text, at its start and at its end, as
// SpamAssassin's HTML renderer does (HTML.pm html_whitespace): a line
// break, a paragraph break or a space; nullptr for the others.
const char* element_space(const xmlNode* n) {
  static const char* const kLine[] = {"br", "div"};
  static const char* const kSpace[] = {"li", "td", "th", "dd", "dt", "embed", "h1", "h2", "h3", "h4", "h5", "h6"};
  static const char* const kParagraph[] = {"p", "hr", "blockquote", "pre", "listing", "plaintext", "xmp", "title"};
  for (const char* b : kLine)
    if (name_is(n, b)) return "\n";
  for (const char* b : kParagraph)
    if (name_is(n, b)) return "\n\n";
  for (const char* b : kSpace)
    if (name_is(n, b)) return " ";
  return nullptr;
}

// Elements without an end tag: their space comes once.
bool is_void(const xmlNode* n) { return name_is(n, "br") || name_is(n, "hr") || name_is(n, "embed"); }

// The text, built as SpamAssassin's renderer builds it: a text node's white
// space runs (and NBSPs) become one space, outside <pre>; an element's
// space drops the space a text ended with, and a text after it drops its
// leading space.
class TextOut {
 public:
  TextOut(std::string& out, std::size_t limit) : out_(out), limit_(limit) {}
  bool cut() const { return cut_; }
  void element(const char* space) {
    if (!after_space_ && !out_.empty() && out_.back() == ' ' && ends_text_) out_.pop_back();
    append(space, std::strlen(space));
    after_space_ = true;
    ends_text_ = false;
  }
  void text(const char* t, std::size_t len, bool pre) {
    std::string run;
    if (pre) {
      run.assign(t, len);
    } else {
      run.reserve(len);
      bool space = false;
      for (std::size_t i = 0; i < len;) {
        const unsigned char c = static_cast<unsigned char>(t[i]);
        const std::size_t n = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' ? 1
                              : c == 0xc2 && i + 1 < len && static_cast<unsigned char>(t[i + 1]) == 0xa0 ? 2
                                                                                                          : 0;
        if (n == 0) {
          run.push_back(t[i++]);
          space = false;
          continue;
        }
        if (!space) run.push_back(' ');
        space = true;
        i += n;
      }
      if (after_space_ && !run.empty() && run.front() == ' ') run.erase(0, 1);
    }
    if (run.empty()) return;
    append(run.data(), run.size());
    after_space_ = false;
    ends_text_ = true;
  }

 private:
  void append(const char* p, std::size_t len) {
    if (cut_) return;
    if (out_.size() + len > limit_) {
      len = limit_ > out_.size() ? limit_ - out_.size() : 0;
      cut_ = true;
    }
    out_.append(p, len);
  }
  std::string& out_;
  std::size_t limit_;
  bool cut_ = false;
  bool after_space_ = false;  // the last thing added was an element's space
  bool ends_text_ = false;    // the last thing added was text
};

// The links an element carries, as SpamAssassin's HTML.pm collects them:
// href (and Gmail's data-saferedirecturl) of a/area/link/base, src of
// img/frame/iframe/embed/script/bgsound, a form's action, and the
// background image of body/table/tr/td.
void take_link(const xmlNode* n, UriCollector& uris) {
  auto take = [&](const char* attr) {
    for (const xmlAttr* a = n->properties; a != nullptr; a = a->next) {
      if (a->name == nullptr || xmlStrcasecmp(a->name, reinterpret_cast<const xmlChar*>(attr)) != 0) continue;
      if (a->children != nullptr && a->children->content != nullptr) {
        const char* v = reinterpret_cast<const char*>(a->children->content);
        uris.add(std::string_view(v, std::strlen(v)), true);
      }
    }
  };
  if (name_is(n, "a") || name_is(n, "area") || name_is(n, "link") || name_is(n, "base")) {
    take("href");
    if (!name_is(n, "base")) take("data-saferedirecturl");
  } else if (name_is(n, "img") || name_is(n, "iframe") || name_is(n, "frame") || name_is(n, "embed") ||
             name_is(n, "script") || name_is(n, "bgsound")) {
    take("src");
  } else if (name_is(n, "form")) {
    take("action");
  } else if (name_is(n, "body") || name_is(n, "table") || name_is(n, "tr") || name_is(n, "td")) {
    take("background");
  }
}

// Browsers (and SpamAssassin's parser) read "<!" not followed by "--",
// "[CDATA[" or "DOCTYPE" as a bogus comment up to the next '>': spam hides
// words with them ("For<!iasbp>mul<!is>ated"). libxml2 keeps them as text,
// so they are removed first; nullopt when there is none (no copy).
std::optional<std::string> without_bogus_comments(std::string_view html) {
  std::optional<std::string> out;
  std::size_t from = 0;
  for (std::size_t at = html.find("<!"); at != std::string_view::npos; at = html.find("<!", at + 2)) {
    std::string_view rest = html.substr(at + 2);
    if (rest.substr(0, 2) == "--") {  // a comment: what it holds is not looked at
      std::size_t close = html.find("-->", at + 4);
      if (close == std::string_view::npos) break;
      at = close + 1;  // the next search starts after the "-->"
      continue;
    }
    if (rest.substr(0, 7) == "[CDATA[") continue;
    if (rest.size() >= 7 && strncasecmp(rest.data(), "doctype", 7) == 0) continue;
    std::size_t end = html.find('>', at + 2);
    if (end == std::string_view::npos) break;
    if (!out) out.emplace().reserve(html.size());
    out->append(html.substr(from, at - from));
    from = end + 1;
    at = end - 1;
  }
  if (out) out->append(html.substr(from));
  return out;
}

}  // namespace

void init_html() {
  static std::once_flag once;
  std::call_once(once, [] { xmlInitParser(); });
}

bool html_to_text(std::string_view html, std::string& out, std::string& sa_out, std::size_t max_bytes,
                  UriCollector& uris) {
  if (html.empty()) return true;
  if (html.size() > static_cast<std::size_t>(INT32_MAX)) html = html.substr(0, INT32_MAX);
  const std::optional<std::string> cleaned = without_bogus_comments(html);
  if (cleaned) html = *cleaned;
  XmlDoc doc(htmlReadMemory(html.data(), static_cast<int>(html.size()), nullptr, "UTF-8",
                            HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                                HTML_PARSE_NONET | HTML_PARSE_COMPACT));
  if (!doc) return true;
  const std::size_t limit = out.size() + max_bytes;
  bool cut = false;
  TextOut sa(sa_out, sa_out.size() + max_bytes);
  int pre = 0;  // inside <pre>: SpamAssassin keeps its white space
  auto leave = [&](const xmlNode* e) {  // the end of element `e`
    if (is_block(e) && !out.empty() && out.back() != '\n') out.push_back('\n');
    if (const char* sp = element_space(e); sp != nullptr && !is_void(e)) sa.element(sp);
    if (name_is(e, "pre")) --pre;
  };
  const xmlNode* n = xmlDocGetRootElement(doc.get());
  // Iterative pre-order walk: descend into children, else next sibling, else climb.
  while (n != nullptr && !cut) {
    bool skip_children = false;
    if (n->type == XML_ELEMENT_NODE) {
      take_link(n, uris);
      if (name_is(n, "script") || name_is(n, "style")) skip_children = true;
      if (is_block(n) && !out.empty() && out.back() != '\n') out.push_back('\n');
      if (const char* sp = element_space(n)) sa.element(sp);
      if (name_is(n, "pre")) ++pre;
      // An element with nothing inside ends at once (the climb below only
      // ends the elements it climbs to).
      if (n->children == nullptr || skip_children) leave(n);
    } else if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
      if (n->content != nullptr) {
        const char* t = reinterpret_cast<const char*>(n->content);
        std::size_t len = std::strlen(t);
        sa.text(t, len, pre > 0);
        if (out.size() + len > limit) {
          len = limit - out.size();
          cut = true;
        }
        out.append(t, len);
      }
    }
    if (!skip_children && n->children != nullptr && n->type == XML_ELEMENT_NODE) {
      n = n->children;
      continue;
    }
    while (n != nullptr && n->next == nullptr) {
      n = n->parent;
      if (n != nullptr && n->type == XML_ELEMENT_NODE) leave(n);
      if (n != nullptr && n->type != XML_ELEMENT_NODE) n = nullptr;  // reached the document
    }
    if (n != nullptr) n = n->next;
  }
  if (!out.empty() && out.back() != '\n') out.push_back('\n');
  if (!sa_out.empty() && sa_out.back() != '\n') sa_out.push_back('\n');
  return !cut;
}

}  // namespace spamgate
