"""The web console in a real browser: headless Chromium driven by Selenium.

Run by Tests/FlagctlTests/ConsoleBrowserTests.swift against a real `flagctl daemon`, Redis and
synthetic traffic. Reads its setup from the environment, prints one JSON object per check on
standard output, saves a screenshot of every page, and exits 1 on the first check that fails.

  FLAGPOLE_CONSOLE_URL     http://127.0.0.1:PORT
  FLAGPOLE_OPERATE_TOKEN   a token with view,operate
  FLAGPOLE_VIEW_TOKEN      a token with view only
  FLAGPOLE_FLAG            the flag whose rollout is failing
  FLAGPOLE_ENVIRONMENT     its environment (typed to confirm in production)
  FLAGPOLE_SCREENSHOTS     the folder for the PNGs
"""
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

base = os.environ["FLAGPOLE_CONSOLE_URL"].rstrip("/")
operate_token = os.environ["FLAGPOLE_OPERATE_TOKEN"]
view_token = os.environ["FLAGPOLE_VIEW_TOKEN"]
flag = os.environ["FLAGPOLE_FLAG"]
environment = os.environ["FLAGPOLE_ENVIRONMENT"]
shots = os.environ["FLAGPOLE_SCREENSHOTS"]
os.makedirs(shots, exist_ok=True)


def report(check, ok, **details):
    print(json.dumps({"check": check, "ok": bool(ok), **details}), flush=True)
    if not ok:
        sys.exit(1)


def browser(width=1280, height=1000):
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("FLAGPOLE_CHROMIUM", "/usr/bin/chromium")
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={width},{height}", "--no-first-run", "--disable-extensions"]:
        options.add_argument(argument)
    service = Service(os.environ.get("FLAGPOLE_CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=options)


def wait(driver, condition, seconds=20):
    return WebDriverWait(driver, seconds).until(condition)


def shot(driver, name):
    path = os.path.join(shots, name + ".png")
    # The whole page: as tall as its content.
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(driver.get_window_size()["width"], max(600, min(4000, height + 40)))
    driver.save_screenshot(path)
    return path


def login(driver, token, next_path):
    driver.get(base + next_path)
    wait(driver, EC.presence_of_element_located((By.NAME, "token")))
    report("login page shown for " + next_path, "/console/login" in driver.current_url, url=driver.current_url)
    driver.find_element(By.NAME, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form[action='/console/login'] button").click()
    wait(driver, lambda d: "/console/login" not in d.current_url)


quoted = urllib.parse.quote(flag, safe="")
driver = browser()
try:
    login(driver, operate_token, "/console")
    wait(driver, EC.presence_of_element_located((By.CSS_SELECTOR, ".cards")))
    report("overview", "Running rollouts" in driver.page_source and flag in driver.page_source, title=driver.title,
           screenshot=shot(driver, "overview"))

    driver.get(base + "/console/flags")
    report("flags", flag in driver.page_source, screenshot=shot(driver, "flags"))

    driver.get(base + "/console/rollouts/" + quoted)
    svg = wait(driver, EC.presence_of_element_located((By.CSS_SELECTOR, "svg.chart")))
    treatment = driver.find_elements(By.CSS_SELECTOR, "svg.chart path.treatment")
    points = driver.find_elements(By.CSS_SELECTOR, "svg.chart circle.point.treatment")
    d = treatment[0].get_attribute("d") if treatment else ""
    report("rollout chart", len(treatment) == 1 and d.startswith("M") and "L" in d and len(points) >= 2,
           path=d[:120], points=len(points), ceiling=len(driver.find_elements(By.CSS_SELECTOR, "svg.chart .ceiling")),
           screenshot=shot(driver, "rollout"))
    report("script loaded, no CSP violation", driver.execute_script("return document.body.dataset.live") == "1" and all(
        "Content Security Policy" not in entry.get("message", "") for entry in driver.get_log("browser")))

    # Abort with a reason, confirm (production asks for the environment's name), see the result.
    form = driver.find_element(By.XPATH, "//form[.//input[@name='action' and @value='abort']]")
    form.find_element(By.NAME, "reason").send_keys("treatment fails: aborted from the browser test")
    form.find_element(By.CSS_SELECTOR, "button").click()
    wait(driver, EC.presence_of_element_located((By.CSS_SELECTOR, "form.confirm")))
    shot(driver, "abort-preview")
    confirm = driver.find_elements(By.NAME, "confirm")
    if confirm:
        confirm[0].send_keys(environment)
    driver.find_element(By.CSS_SELECTOR, "form.confirm button").click()
    wait(driver, lambda d: "Done" in d.title or "Changed" in d.title or "Refused" in d.title)
    report("abort applied", "aborted" in driver.page_source, title=driver.title, screenshot=shot(driver, "abort-done"))

    driver.get(base + "/console/flags/" + quoted)
    report("flag back", "No override" in driver.page_source or "Override:" in driver.page_source,
           screenshot=shot(driver, "flag"))
    driver.get(base + "/console/audit?flag=" + quoted)
    report("audit entry", "rollout-abort" in driver.page_source and "aborted from the browser test" in driver.page_source,
           screenshot=shot(driver, "audit"))
    # The session cookie is HttpOnly: the page's script cannot read it.
    report("cookie is HttpOnly", "flagpole_console" not in driver.execute_script("return document.cookie"))
finally:
    driver.quit()

# A view-only token sees no action buttons, and a POST it forges is refused.
driver = browser(390, 844)  # a phone
try:
    login(driver, view_token, "/console/flags/" + quoted)
    report("viewer sees no actions", "Preview" not in driver.page_source and "Actions" not in driver.page_source,
           screenshot=shot(driver, "viewer-flag-phone"))
    cookie = driver.get_cookie("flagpole_console")
    page = driver.page_source
    marker = 'name="csrf" value="'
    csrf = page[page.index(marker) + len(marker):].split('"')[0]
finally:
    driver.quit()

def post(path, fields, cookie_value):
    request = urllib.request.Request(base + path, data=urllib.parse.urlencode(fields).encode(), method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    if cookie_value:
        request.add_header("Cookie", "flagpole_console=" + cookie_value)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code

fields = {"action": "disable", "reason": "forged", "seen": "x", "step": "apply"}
report("viewer's POST refused", post("/console/flags/" + quoted, dict(fields, csrf=csrf), cookie["value"]) == 403)
report("POST without CSRF token refused", post("/console/flags/" + quoted, fields, cookie["value"]) == 403)
report("POST without session refused", post("/console/flags/" + quoted, fields, None) == 403)
