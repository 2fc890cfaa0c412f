// html.h - HTML rendered to text for body rules, with its link targets.
//
// Uses libxml2's HTML parser in recovery mode (it never rejects a document);
// script and style contents are dropped, block elements end a line, entities
// are decoded. Thread-safe after init_html() (called by parse_message).
#pragma once

#include <string>
#include <string_view>

#include "message/uri.h"

namespace spamgate {

void init_html();

// Appends the text of `html` (UTF-8) to `out`, at most `max_bytes` of it, and
// hands href/src/action targets to `uris`. Returns false if the text was cut.
// `sa_out` gets the text as SpamAssassin's renderer makes it, for its body
// rules: a text's white space runs are one space, <br> and <div> a line
// break, <p> and kin a paragraph break, <td> and kin a space (`out` keeps
// the source's white space and ends a line at every block element).
bool html_to_text(std::string_view html, std::string& out, std::string& sa_out, std::size_t max_bytes,
                  UriCollector& uris);

}  // namespace spamgate
