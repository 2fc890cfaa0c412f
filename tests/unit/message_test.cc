#include <gtest/gtest.h>
#include "spamgate/message.h"
TEST(Message, Placeholder) { spamgate::Limits l; auto m = spamgate::parse_message("Subject: hi\n\nbody\n", l); EXPECT_EQ(m.headers.size(), 1u); }
