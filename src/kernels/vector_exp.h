#pragma once
// exp(x) on SIMD lanes, the same operations on every ISA (so bitwise equal results): x clamped to
// [-87, 88], x = n ln2 + r with n = round(x / ln2) and r by a two-constant Cody-Waite reduction,
// e^r by its degree-6 Taylor polynomial in Horner form (|r| <= ln2/2: truncation < 2e-7 relative),
// then times 2^n (one correctly rounded step on every ISA). Within 3 ulp of std::exp over the
// clamped range (tested; the Horner steps round six times).
namespace llama3::kernels {

template <typename V>
inline typename V::Vec exp_vec(typename V::Vec x) {
  using Vec = typename V::Vec;
  x = V::max(V::min(x, V::set1(88.0f)), V::set1(-87.0f));
  const Vec n = V::round_even(V::mul(x, V::set1(1.44269504088896341f)));
  Vec r = V::fma(n, V::set1(-0.693145751953125f), x);  // ln2's top bits: n * hi is exact
  r = V::fma(n, V::set1(-1.428606765330187045e-06f), r);
  Vec p = V::set1(1.0f / 720.0f);
  p = V::fma(p, r, V::set1(1.0f / 120.0f));
  p = V::fma(p, r, V::set1(1.0f / 24.0f));
  p = V::fma(p, r, V::set1(1.0f / 6.0f));
  p = V::fma(p, r, V::set1(0.5f));
  p = V::fma(p, r, V::set1(1.0f));
  p = V::fma(p, r, V::set1(1.0f));
  return V::times_pow2(p, n);
}

}  // namespace llama3::kernels
