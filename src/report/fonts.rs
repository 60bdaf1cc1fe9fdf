//! The embedded font. Users' servers have no system fonts, so plotters (default features off, the
//! pure-Rust `ab_glyph` backend) draws every label with DejaVu Sans compiled into the binary
//! (`assets/fonts/`, Bitstream Vera / DejaVu licence in `assets/fonts/LICENSE-DejaVu.txt`).

use std::sync::Once;

use plotters::style::FontStyle;

/// The family name charts use.
pub const FAMILY: &str = "sans-serif";

static REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");
static REGISTER: Once = Once::new();

/// Register the embedded font under `FAMILY` (normal and bold). Idempotent; call before drawing.
pub fn register() {
    REGISTER.call_once(|| {
        // The bytes are compiled in and known-good; a failure here is a build defect, caught by the
        // test below, not something user data can cause.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, REGULAR);
        let _ = plotters::style::register_font(FAMILY, FontStyle::Bold, BOLD);
    });
}

#[cfg(test)]
mod tests {
    use plotters::prelude::*;

    #[test]
    fn text_renders_with_the_embedded_font_alone() {
        super::register();
        let mut buf = vec![0u8; 200 * 60 * 3];
        {
            let root = BitMapBackend::with_buffer(&mut buf, (200, 60)).into_drawing_area();
            root.fill(&WHITE).unwrap();
            root.draw(&Text::new(
                "Reviews per day",
                (5, 20),
                (super::FAMILY, 18).into_font().color(&BLACK),
            ))
            .expect("embedded font draws");
            root.present().unwrap();
        }
        // Some pixels are no longer white: glyphs were drawn.
        assert!(buf.iter().filter(|&&b| b < 128).count() > 50);
        // SVG too (text is emitted as text, with the family name).
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (200, 60)).into_drawing_area();
            root.draw(&Text::new("x", (5, 20), (super::FAMILY, 18).into_font()))
                .unwrap();
        }
        assert!(svg.contains("sans-serif"));
    }
}
