/** Tailwind CSS v3: `npm run build:css` writes static/css/app.css (committed, and rebuilt in the image). */
/** @type {import('tailwindcss').Config} */
module.exports = {
  // Only classes that appear in these files end up in app.css.
  content: ["./templates/**/*.html", "./static/js/**/*.js"],
  // Follows the operating system's light/dark setting, like the page's color-scheme.
  darkMode: "media",
  // Classes built from data at run time, which the content scan cannot see.
  safelist: ["error", "success", "warning", "info", "debug"],
  theme: {
    extend: {},
  },
  corePlugins: {
    // The pages are styled by the component rules in static/src/app.css, which assume the
    // browser's default element styles (headings, lists, buttons); preflight would reset them.
    preflight: false,
  },
  plugins: [],
};
