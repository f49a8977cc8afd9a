#!/bin/sh
# Generate pypbx's small prompt set (8 kHz mono 16-bit WAV) with espeak-ng and sox:
# digits for SayDigits/SayNumber, the prompts the example dial plan plays, and tones.
# Usage: scripts/make-sounds.sh DIR   (nothing is downloaded)
set -eu
DIR="${1:?usage: make-sounds.sh DIR}"
mkdir -p "$DIR/digits"
if ! command -v espeak-ng >/dev/null || ! command -v sox >/dev/null; then
    echo "make-sounds: espeak-ng and sox are needed (scripts/install-deps.sh installs them)" >&2
    exit 1
fi
say() {  # say FILE TEXT
    out="$DIR/$1.wav"
    [ -s "$out" ] && return 0
    tmp="$out.tmp.wav"
    espeak-ng -v en-us -s 150 -w "$tmp" "$2"
    sox -q "$tmp" -r 8000 -c 1 -b 16 -e signed-integer "$out"
    rm -f "$tmp"
}
n=0
for w in zero one two three four five six seven eight nine; do
    say "digits/$n" "$w"; n=$((n + 1))
done
for pair in 10:ten 11:eleven 12:twelve 13:thirteen 14:fourteen 15:fifteen 16:sixteen \
            17:seventeen 18:eighteen 19:nineteen 20:twenty 30:thirty 40:forty 50:fifty \
            60:sixty 70:seventy 80:eighty 90:ninety; do
    say "digits/${pair%%:*}" "${pair#*:}"
done
say digits/hundred "hundred"
say digits/thousand "thousand"
say digits/million "million"
say digits/star "star"
say digits/pound "pound"
say demo-echotest "This is the echo test. What you say is played back to you."
say demo-congrats "Congratulations. You have reached pypbx."
say vm-goodbye "Goodbye."
say pls-wait-connect-call "Please wait while I connect your call."
say invalid "That is not a valid extension."
say please-try-again "Please try again."
say enter-ext-of-person "Please enter the extension of the person you are looking for."
[ -s "$DIR/beep.wav" ] || sox -q -n -r 8000 -c 1 -b 16 "$DIR/beep.wav" synth 0.25 sine 1000 vol 0.5
[ -s "$DIR/tone-1khz.wav" ] || sox -q -n -r 8000 -c 1 -b 16 "$DIR/tone-1khz.wav" synth 3 sine 1000 vol 0.5
[ -s "$DIR/tone-440hz.wav" ] || sox -q -n -r 8000 -c 1 -b 16 "$DIR/tone-440hz.wav" synth 3 sine 440 vol 0.5
mkdir -p "$DIR/moh/default"
[ -s "$DIR/moh/default/chimes.wav" ] || sox -q -n -r 8000 -c 1 -b 16 "$DIR/moh/default/chimes.wav" \
    synth 0.4 sine 523 : synth 0.4 sine 659 : synth 0.4 sine 784 : synth 0.8 sine 1047 vol 0.4
echo "make-sounds: prompts in $DIR"
