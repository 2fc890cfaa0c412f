#!/usr/bin/python3
"""console_browser.py - the support console in a real browser (Debian's
chromium + chromedriver through Selenium, headless), against a milter
behind a real Postfix (console_e2e.sh sets them up).

A customer's "this was not spam": the message is found by its queue id and
by the reference in its delivered header, marked as a false positive, the
proposed welcomelist_auth line saved and the reload taken; the same message
sent again is not tagged. Then what must be refused: a wrong password,
a change without the CSRF token or with another user's, every page without
a session, and a broken rule typed into the editor (its lint error shown,
mail still flowing with the old rules). Each assertion prints ok/FAIL;
exit 1 if any failed. Every wait is for a condition, with a generous limit.
"""
import argparse
import glob
import http.client
import os
import re
import smtplib
import ssl
import subprocess
import sys
import time
import urllib.parse

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

WAIT = float(os.environ.get("WAIT_MAX", "180"))
results = {"pass": 0, "fail": 0}


def check(name, cond, detail=""):
    if cond:
        results["pass"] += 1
        print("ok   " + name)
    else:
        results["fail"] += 1
        print("FAIL " + name + (": " + detail if detail else ""))
    sys.stdout.flush()
    return cond


def wait_for(fn, limit=WAIT):
    end = time.monotonic() + limit
    while True:
        v = fn()
        if v or time.monotonic() > end:
            return v
        time.sleep(0.1)


class Mail:
    """Sends as an outside client (XCLIENT) and returns the delivered file."""

    def __init__(self, port, directory):
        self.port, self.dir = port, directory

    def delivered_files(self):
        return sorted(glob.glob(os.path.join(self.dir, "sink", "*")), key=os.path.getmtime)

    def queue_empty(self):
        return not any(glob.glob(os.path.join(self.dir, "queue", q, "**", "*"), recursive=True)
                       for q in ("incoming", "active"))

    def send(self, data, mail_from, rcpt="user@example.net", addr="192.0.2.10"):
        before = set(self.delivered_files())
        s = smtplib.SMTP("127.0.0.1", self.port, timeout=WAIT)
        s.ehlo("client.test.example")
        code, _ = s.docmd("XCLIENT", "ADDR=%s NAME=[UNAVAILABLE]" % addr)
        if code != 220:
            raise RuntimeError("XCLIENT refused: %d" % code)
        s.ehlo("client.test.example")
        s.sendmail(mail_from, [rcpt], data)
        s.quit()

        def arrived():
            new = [f for f in self.delivered_files() if f not in before]
            if not new or not self.queue_empty():
                return None
            size = os.path.getsize(new[-1])
            time.sleep(0.2)  # the sink's file stops growing
            return new[-1] if os.path.getsize(new[-1]) == size and size > 0 else None

        f = wait_for(arrived)
        if not f:
            raise RuntimeError("the message was not delivered within %.0f s" % WAIT)
        with open(f, "rb") as fh:
            return fh.read().decode("utf-8", "replace")


def header(msg, name):
    """The (unfolded) value of the first field `name` in a delivered message."""
    m = re.search(r"^" + re.escape(name) + r":[ \t]*(.*(?:\r?\n[ \t].*)*)", msg, re.M | re.I)
    return re.sub(r"\r?\n[ \t]", " ", m.group(1)).strip() if m else None


def request(base, method, path, body=None, cookie=None):
    """One raw request (no redirects followed): status, headers, body."""
    u = urllib.parse.urlparse(base)
    if u.scheme == "https":  # the test's own self-signed certificate
        c = http.client.HTTPSConnection(u.hostname, u.port, timeout=WAIT, context=ssl._create_unverified_context())
    else:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=WAIT)
    headers = {}
    if cookie:
        headers["Cookie"] = "sg_session=" + cookie
    if body is not None:
        body = urllib.parse.urlencode(body)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read().decode("utf-8", "replace")
    hs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hs, data


def login_raw(base, user, password):
    """Logs in without the browser: (session cookie, CSRF token of its pages)."""
    st, hs, _ = request(base, "POST", "/login", {"user": user, "password": password, "next": "/"})
    m = re.search(r"sg_session=([0-9a-f]+)", hs.get("set-cookie", ""))
    if st != 303 or not m:
        return None, None
    cookie = m.group(1)
    _, _, page = request(base, "GET", "/rules", cookie=cookie)
    t = re.search(r'name=csrf value="([0-9a-f]+)"', page)
    return cookie, t.group(1) if t else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--console", required=True)
    ap.add_argument("--smtp", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--spam", required=True)
    ap.add_argument("--chromedriver-port", type=int, default=0)
    a = ap.parse_args()
    base = a.console.rstrip("/")
    mail = Mail(a.smtp, a.dir)
    local_cf = os.path.join(a.dir, "local.cf")

    # The spam message of the corpus, but from a customer's real partner:
    # outside.example, whose SPF allows the client address used here.
    with open(a.spam, encoding="utf-8") as fh:
        spam = fh.read()
    fp = re.sub(r"^From: .*$", "From: Alice Partner <alice@outside.example>", spam, count=1, flags=re.M)
    fp = fp.replace("Subject: ", "Message-ID: <fp-1@outside.example>\nSubject: ", 1).replace("\n", "\r\n")
    fp_file = os.path.join(a.dir, "fp.eml")
    with open(fp_file, "w", newline="") as fh:
        fh.write(fp)
    other_file = os.path.join(a.dir, "other.eml")
    with open(other_file, "w") as fh:
        fh.write("From: bob@outside.example\nMessage-ID: <other@outside.example>\nSubject: hi\n\nhello\n")

    delivered = mail.send(fp, "alice@outside.example")
    subject = header(delivered, "Subject")
    check("the message is tagged as spam at first", subject and subject.startswith("[SPAM] - "), str(subject))
    details = header(delivered, "X-Spam-Technical-Details") or ""
    m = re.search(r"\?ref=([a-z2-7]{16})", details)
    check("its X-Spam-Technical-Details carries a reference", m is not None, details)
    ref = m.group(1) if m else "none"
    # The queue id as the history holds it (written in the background).
    qid = None

    def history_qid():
        r = subprocess.run([a.bin, "history", "--config", a.config, ref], capture_output=True, text=True)
        q = re.search(r"queue_id=([0-9A-F]{6,})", r.stdout)
        return q.group(1) if q else None

    qid = wait_for(history_qid)
    check("the history has the message with Postfix's queue id", qid is not None)

    # --- every page refused without a session --------------------------------
    for path in ["/", "/verdict?ref=" + ref, "/rules", "/audit", "/?q=" + ref]:
        st, hs, body = request(base, "GET", path)
        check("GET %s without a session: sent to the login page" % path,
              st == 303 and hs.get("location", "").startswith("/login") and "<table" not in body and "csrf" not in body,
              "%d %s" % (st, hs.get("location")))
    for path in ["/propose", "/rules/append", "/rules", "/logout"]:
        st, _, _ = request(base, "POST", path, {"lines": "welcomelist_auth *@evil.example\n",
                                             "content": "welcomelist_auth *@evil.example\n", "ref": ref})
        check("POST %s without a session: 403" % path, st == 403, str(st))
    check("... and the local rules are unchanged", open(local_cf).read() == "")

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    opts.accept_insecure_certs = True  # the test's own self-signed certificate
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=412,915", "--no-proxy-server"):  # a phone's width
        opts.add_argument(arg)
    service = Service("/usr/bin/chromedriver", port=a.chromedriver_port)
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(WAIT)
    wait = WebDriverWait(driver, WAIT)

    def text(css):
        return driver.find_element(By.CSS_SELECTOR, css).text

    try:
        # --- a wrong password, then the right one --------------------------------
        driver.get(base + "/verdict?ref=" + ref)  # the support page opens the reference directly
        wait.until(EC.presence_of_element_located((By.ID, "password")))
        check("the reference link asks for a login first", "/login" in driver.current_url, driver.current_url)
        driver.find_element(By.ID, "user").send_keys("alice")
        driver.find_element(By.ID, "password").send_keys("wrong password")
        driver.find_element(By.ID, "login").click()
        wait.until(EC.presence_of_element_located((By.ID, "error")))
        check("a wrong password is refused", "Wrong user name or password" in text("#error"))
        check("... and gives no session", driver.get_cookie("sg_session") is None)
        driver.find_element(By.ID, "user").clear()
        driver.find_element(By.ID, "user").send_keys("alice")
        driver.find_element(By.ID, "password").send_keys("alice-secret-1")
        driver.find_element(By.ID, "login").click()
        wait.until(EC.presence_of_element_located((By.ID, "summary")))
        check("after the login, the reference's verdict opens", text("#ref") == ref, driver.current_url)
        cookie = driver.get_cookie("sg_session")
        check("the session cookie is HttpOnly and SameSite=Strict",
              cookie and cookie.get("httpOnly") and cookie.get("sameSite") == "Strict", str(cookie))
        if base.startswith("https:"):
            check("... and Secure (HTTPS)", cookie and cookie.get("secure"), str(cookie))

        # --- find it by queue id, then by the reference ---------------------------
        driver.get(base + "/")
        box = wait.until(EC.presence_of_element_located((By.ID, "q")))
        box.send_keys(qid or "none")
        driver.find_element(By.ID, "search").click()
        wait.until(EC.presence_of_element_located((By.ID, "results")))
        rows = driver.find_elements(By.CSS_SELECTOR, "#results tr")
        check("the queue id finds one verdict", len(rows) == 2, str(len(rows)))
        check("... with its Subject", "CONGRATULATIONS" in text("#results"))
        driver.find_element(By.CSS_SELECTOR, "#results a").click()
        wait.until(EC.presence_of_element_located((By.ID, "summary")))
        check("the result opens the verdict", text("#ref") == ref and text("#queue_id") == qid)
        driver.get(base + "/")
        box = wait.until(EC.presence_of_element_located((By.ID, "q")))
        box.send_keys(ref)
        driver.find_element(By.ID, "search").click()
        wait.until(EC.presence_of_element_located((By.ID, "summary")))
        check("the reference from the header opens its verdict", text("#ref") == ref)
        check("the verdict shows the action", text("#action").startswith("tag"), text("#action"))
        hits = text("#hits")
        check("each rule shows where it is defined (file:line)", re.search(r"rules/\S+\.cf:\d+", hits) is not None,
              hits[:300])
        check("... and where its score is set", " at " in hits and re.search(r"\d\.\d at \S+\.cf:\d+", hits), hits[:300])
        check("the headers we added are shown", "please visit https://support.example.com/spam?ref=" + ref in
              text("#added"))

        # --- false positive: the proposed line, linted, saved, reloaded ----------
        lines = driver.find_element(By.ID, "lines").get_attribute("value")
        check("the proposal is an authenticated welcomelist line for the sender's domain",
              "welcomelist_auth *@outside.example" in lines, lines)
        # Picking the other proposal changes the lines (the page's script); back to the first.
        driver.find_element(By.ID, "p-welcomelist-address").click()
        check("choosing the address proposal shows its line",
              "welcomelist_auth alice@outside.example" in driver.find_element(By.ID, "lines").get_attribute("value"))
        driver.find_element(By.ID, "p-welcomelist-domain").click()
        driver.find_element(By.ID, "check").click()
        wait.until(EC.presence_of_element_located((By.ID, "lint")))
        check("the lines are checked against the running rules", "no error" in text("#lint"), text("#lint"))
        check("... and shown exactly", "welcomelist_auth *@outside.example" in text("#proposed"))
        check("nothing is saved before the confirmation", open(local_cf).read() == "")
        driver.find_element(By.ID, "save").click()
        wait.until(EC.alert_is_present())
        driver.switch_to.alert.accept()
        wait.until(EC.presence_of_element_located((By.ID, "reload")))
        check("saved", "Saved to" in text("#saved"))
        check("the reload was taken", "new rules are in use" in text("#reload"), text("#reload"))
        saved = open(local_cf).read()
        check("the local file has the line", "welcomelist_auth *@outside.example\n" in saved, saved)

        # --- learn it as ham: the message file, checked to be this verdict's ------
        driver.get(base + "/verdict?ref=" + ref)
        wait.until(EC.presence_of_element_located((By.ID, "message"))).send_keys(other_file)
        driver.find_element(By.ID, "learn-ham").click()
        wait.until(EC.presence_of_element_located((By.ID, "learned")))
        check("another message's file is not learned", "not the verdict's message" in text("#learned"),
              text("#learned"))
        driver.get(base + "/verdict?ref=" + ref)
        wait.until(EC.presence_of_element_located((By.ID, "message"))).send_keys(fp_file)
        driver.find_element(By.ID, "learn-ham").click()
        wait.until(EC.presence_of_element_located((By.ID, "learned")))
        check("the verdict's message is learned as ham", "Learned as ham" in text("#learned"), text("#learned"))
        stats = subprocess.run([a.bin, "learn", "--config", a.config, "--stats"], capture_output=True, text=True)
        check("... and the classifier's store counts it (spamgate learn --stats)",
              re.search(r"^ham: 1$", stats.stdout, re.M) is not None, stats.stdout + stats.stderr)

        again = mail.send(fp, "alice@outside.example")
        s2 = header(again, "Subject")
        check("the same message sent again is not tagged", s2 == "CONGRATULATIONS YOU HAVE WON!!!", str(s2))
        check("... because the welcomelist counted (SPF pass)",
              "USER_IN_WELCOMELIST_AUTH" in (header(again, "X-Spam-Status") or ""), header(again, "X-Spam-Status"))
        forged = mail.send(fp, "alice@outside.example", addr="203.0.113.9")  # outside the SPF record
        s3 = header(forged, "Subject") or ""
        check("a forged copy from a client SPF does not allow is still tagged", s3.startswith("[SPAM] - "), s3)

        # --- CSRF: missing, or another user's ------------------------------------
        alice = cookie["value"]
        st, _, _ = request(base, "POST", "/rules", {"content": "welcomelist_auth *@evil.example\n"}, cookie=alice)
        check("a change without the CSRF token: 403", st == 403, str(st))
        bob_cookie, bob_csrf = login_raw(base, "bob", "bob-secret-2")
        check("bob logs in (no browser)", bob_cookie is not None and bob_csrf is not None)
        st, _, _ = request(base, "POST", "/rules", {"content": "welcomelist_auth *@evil.example\n", "csrf": bob_csrf or ""},
                        cookie=alice)
        check("alice's session with bob's CSRF token: 403", st == 403, str(st))
        st, _, _ = request(base, "POST", "/rules/append", {"lines": "welcomelist_auth *@evil.example\n",
                                                        "csrf": bob_csrf or ""}, cookie="0" * 64)
        check("a made-up session: 403", st == 403, str(st))
        check("... and none of those changed the local rules", open(local_cf).read() == saved)

        # --- the editor: a broken rule is refused with its lint error ------------
        driver.get(base + "/rules")
        area = wait.until(EC.presence_of_element_located((By.ID, "content")))
        check("the editor shows the local file", "welcomelist_auth *@outside.example" in area.get_attribute("value"))
        area.send_keys("\nbody LOCAL_BROKEN /unclosed(paren/\nscore LOCAL_BROKEN 3.0\n")
        driver.find_element(By.ID, "save").click()
        wait.until(EC.presence_of_element_located((By.ID, "lint")))
        lint = text("#lint")
        check("a broken rule is refused with its lint error (file:line)",
              "Not saved" in lint and re.search(r"local\.cf:\d+: rule 'LOCAL_BROKEN'", lint), lint)
        check("... and the file is unchanged", open(local_cf).read() == saved)
        check("... the edit stays in the editor to fix",
              "LOCAL_BROKEN" in driver.find_element(By.ID, "content").get_attribute("value"))
        again = mail.send(fp, "alice@outside.example")
        check("mail still flows with the old rules (welcomelisted)",
              header(again, "Subject") == "CONGRATULATIONS YOU HAVE WON!!!", str(header(again, "Subject")))
        other = mail.send(spam.replace("\n", "\r\n"), "claims@winners-board.example", addr="192.0.2.20")
        check("... and other spam is still tagged", (header(other, "Subject") or "").startswith("[SPAM] - "))

        # --- the audit log --------------------------------------------------------
        driver.get(base + "/audit")
        audit = wait.until(EC.presence_of_element_located((By.ID, "audit"))).text
        check("the audit log names who saved the line", re.search(r"alice .*rules-append", audit) is not None, audit[:400])
        check("... the refused edit", "rules-save-refused" in audit)
        check("... the failed login and the refused CSRF", "login-failed" in audit and "csrf-refused" in audit)
        check("... and the learning", "learn-ham" in audit)

        # --- log out: the session is gone ----------------------------------------
        driver.find_element(By.ID, "logout").click()
        wait.until(EC.presence_of_element_located((By.ID, "password")))
        st, hs, _ = request(base, "GET", "/rules", cookie=alice)
        check("after logging out, the old session is refused", st == 303 and "/login" in hs.get("location", ""))
    finally:
        driver.quit()
    print("console_browser: %d passed, %d failed" % (results["pass"], results["fail"]))
    return 1 if results["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
