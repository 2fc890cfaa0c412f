// gmime_util.h - GMime set-up shared by the parser and the feedback-report
// reader. Private to src/.
#pragma once

typedef struct _GMimeParserOptions GMimeParserOptions;

namespace spamgate {

// Initialises GMime (and the HTML renderer) once per process; thread-safe.
void init_gmime();
// Loose-compliance parser options shared by every parse; read-only.
GMimeParserOptions* parser_options();

}  // namespace spamgate
